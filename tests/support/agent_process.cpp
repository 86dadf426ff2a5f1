#include "support/agent_process.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/pg_server.hpp"

namespace pgvigil::test {

namespace {

int Spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
          const std::string& output_path) {
  std::vector<std::string> env_strings = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"};
  for (const char* keep : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* v = std::getenv(keep)) env_strings.push_back(std::string(keep) + "=" + v);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + output_path);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(fd);
  return pid;
}

}  // namespace

long ProcStatus(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  const std::string wanted = field + ":";
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == wanted) {
      in >> value;
      return value;
    }
    std::getline(in, key);
  }
  return -1;
}

bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

AgentProcess::AgentProcess(std::string toml, std::map<std::string, std::string> env,
                           std::vector<std::string> extra_args, std::vector<std::string> wrapper) {
  char tmpl[] = "/tmp/pgvigil-agent.XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = FreeTcpPort();
  for (auto pos = toml.find("{port}"); pos != std::string::npos; pos = toml.find("{port}")) {
    toml.replace(pos, 6, std::to_string(port_));
  }
  std::ofstream(dir_ + "/pgvigil.toml") << toml;
  std::vector<std::string> args = std::move(wrapper);
  args.insert(args.end(), {PGVIGIL_BINARY, "--config", dir_ + "/pgvigil.toml"});
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(args, env, dir_ + "/output.log");
}

AgentProcess::~AgentProcess() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

HttpReply AgentProcess::Request(const std::string& method, const std::string& path,
                                std::chrono::milliseconds timeout) const {
  httplib::Client cli("127.0.0.1", port_);
  cli.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  cli.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
  HttpReply reply;
  const auto start = std::chrono::steady_clock::now();
  httplib::Result res = method == "GET"    ? cli.Get(path)
                        : method == "HEAD" ? cli.Head(path)
                        : method == "POST" ? cli.Post(path, "", "text/plain")
                        : method == "PUT"  ? cli.Put(path, "", "text/plain")
                                           : cli.Delete(path);
  reply.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (res) {
    reply.status = res->status;
    reply.body = res->body;
    for (const auto& [k, v] : res->headers) reply.headers[k] = v;
  }
  return reply;
}

HttpReply AgentProcess::Get(const std::string& path, std::chrono::milliseconds timeout) const {
  return Request("GET", path, timeout);
}

bool AgentProcess::WaitHttp(std::chrono::milliseconds timeout) const {
  return Eventually([&] { return Get("/livez", std::chrono::milliseconds(500)).status == 200; },
                    timeout);
}

std::string AgentProcess::State() const {
  auto r = Get("/health", std::chrono::milliseconds(1000));
  if (r.status == 0) return "";
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("database")) return "";
  return j["database"].value("state", "");
}

bool AgentProcess::WaitState(const std::string& state, std::chrono::milliseconds timeout) const {
  return Eventually([&] { return State() == state; }, timeout);
}

void AgentProcess::Signal(int sig) const { ::kill(pid_, sig); }

std::optional<int> AgentProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

std::string AgentProcess::Output() const { return ReadTextFile(dir_ + "/output.log"); }

std::optional<double> AgentProcess::Metric(const std::string& series) const {
  auto r = Get("/metrics");
  if (r.status != 200) return std::nullopt;
  return MetricValue(r.body, series);
}

CommandResult RunPgvigil(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env) {
  char tmpl[] = "/tmp/pgvigil-run.XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  std::vector<std::string> full = {PGVIGIL_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = Spawn(full, env, tmpl);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.output = ReadTextFile(tmpl);
  ::unlink(tmpl);
  return r;
}

std::string FastAgentConfig(const std::string& extra) {
  return R"([database]
url_env = "TEST_DB_URL"
connect_timeout = "1500ms"

[pool]
backoff_initial = "100ms"
backoff_max = "500ms"
misconfigured_backoff = "30s"

[probe]
interval = "600ms"
timeout = "500ms"
failure_threshold = 2

[http]
listen = "127.0.0.1:{port}"
shutdown_timeout = "3s"

[log]
level = "debug"
)" + extra;
}

std::map<std::string, std::string> DbUrlEnv(const std::string& url) {
  return {{"TEST_DB_URL", url}};
}

nlohmann::json HealthOf(const AgentProcess& agent) {
  return nlohmann::json::parse(agent.Get("/health").body, nullptr, false);
}

std::string PromtoolRemarks(const std::string& exposition) {
  char path[] = "/tmp/pgvigil-metrics.XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "cannot write a temporary file for promtool";
  { std::ofstream(path, std::ios::binary) << exposition; }
  close(fd);
  std::string out;
  RunCommand(std::string("promtool check metrics < ") + path + " 2>&1", &out);
  std::remove(path);
  std::string remarks;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("pg_locks_count ", 0) == 0 || line.rfind("pg_stat_activity_count ", 0) == 0 ||
        line.find("suffix") == 0 || line.empty()) {
      continue;
    }
    remarks += line + "\n";
  }
  return remarks;
}

}  // namespace pgvigil::test
