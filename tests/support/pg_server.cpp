#include "support/pg_server.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pgvigil::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin/";

struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// PostgreSQL and pgbouncer refuse to run as root: when we are root, children become `postgres`.
RunAs ServerUser() {
  RunAs r;
  if (geteuid() != 0) return r;
  struct passwd* pw = getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` user");
  r.switch_user = true;
  r.uid = pw->pw_uid;
  r.gid = pw->pw_gid;
  return r;
}

void ChownToServerUser(const std::string& path) {
  RunAs r = ServerUser();
  if (r.switch_user && chown(path.c_str(), r.uid, r.gid) != 0) {
    throw std::runtime_error("chown " + path + ": " + std::strerror(errno));
  }
}

std::string MakeTempDir(const char* prefix) {
  std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  chmod(tmpl.c_str(), 0700);
  ChownToServerUser(tmpl);
  return tmpl;
}

// The environment for children: ours minus libpq's PG* variables (they would redirect psql).
std::vector<std::string> ChildEnv(const std::string& home) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v(*e);
    if (v.starts_with("PG") || v.starts_with("HOME=")) continue;
    env.emplace_back(v);
  }
  env.push_back("HOME=" + home);
  return env;
}

struct Spawned {
  pid_t pid = -1;
  int out_fd = -1;  // stdout (and stderr when merged)
  int err_fd = -1;
};

// fork/exec `argv` as the server user with cwd `cwd`. When `log_path` is set, stdout+stderr go
// there; otherwise they are piped back (merged when `merge`).
Spawned Spawn(const std::vector<std::string>& argv, const std::string& cwd, bool merge,
              const std::string& log_path = "") {
  RunAs as = ServerUser();
  std::vector<std::string> env = ChildEnv(cwd);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int out[2] = {-1, -1}, err[2] = {-1, -1};
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
    if (as.switch_user) (void)fchown(log_fd, as.uid, as.gid);
  } else {
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (!merge && pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  }
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    } else {
      dup2(out[1], 1);
      dup2(merge ? out[1] : err[1], 2);
    }
    setpgid(0, 0);  // signals sent to our test's process group do not reach servers
    if (as.switch_user) {
      if (setgroups(0, nullptr) != 0 || setgid(as.gid) != 0 || setuid(as.uid) != 0) _exit(126);
    }
    if (chdir(cwd.c_str()) != 0) _exit(126);
    execve(cargv[0], cargv.data(), cenv.data());
    _exit(127);
  }
  Spawned s;
  s.pid = pid;
  if (log_fd >= 0) close(log_fd);
  if (out[1] >= 0) close(out[1]);
  if (err[1] >= 0) close(err[1]);
  s.out_fd = out[0];
  s.err_fd = err[0];
  return s;
}

// Runs to completion, collecting stdout and stderr. Returns the exit status (128+signal).
int RunArgv(const std::vector<std::string>& argv, const std::string& cwd, std::string* out,
            std::string* err) {
  Spawned s = Spawn(argv, cwd, err == nullptr);
  std::string out_buf, err_buf;
  std::vector<pollfd> fds;
  if (s.out_fd >= 0) fds.push_back({s.out_fd, POLLIN, 0});
  if (s.err_fd >= 0) fds.push_back({s.err_fd, POLLIN, 0});
  char buf[4096];
  while (!fds.empty()) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size();) {
      if (fds[i].revents == 0) {
        ++i;
        continue;
      }
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (fds[i].fd == s.out_fd ? out_buf : err_buf).append(buf, static_cast<size_t>(n));
        ++i;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<long>(i));
      }
    }
  }
  int status = 0;
  while (waitpid(s.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (out) *out = std::move(out_buf);
  if (err) *err = std::move(err_buf);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

void AppendFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
  ChownToServerUser(path);
}

std::string PercentEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// postgresql://vigil:<password>@127.0.0.1:<port>/<dbname>. Appended piecewise: GCC 12 reports a
// false -Warray-bounds on long operator+ chains of std::string at -O2.
std::string LoopbackUrl(int port, const std::string& password, const std::string& dbname) {
  std::string url = "postgresql://";
  url += kUser;
  url += ':';
  url += PercentEncode(password);
  url += "@127.0.0.1:";
  url += std::to_string(port);
  url += '/';
  url += dbname;
  return url;
}

// State field and parent pid of a process from /proc/<pid>/stat; false if gone.
bool ProcStat(int pid, char* state, int* ppid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  size_t rp = line.rfind(')');
  if (rp == std::string::npos) return false;
  std::istringstream rest(line.substr(rp + 1));
  rest >> *state >> *ppid;
  return static_cast<bool>(rest);
}

// Alive and not a zombie (our container's init may never reap orphans).
bool Alive(int pid) {
  char state = 0;
  int ppid = 0;
  return pid > 0 && ProcStat(pid, &state, &ppid) && state != 'Z' && state != 'X';
}

std::vector<int> ChildrenOf(int parent) {
  std::vector<int> kids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return kids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    char state = 0;
    int ppid = 0;
    if (ProcStat(static_cast<int>(pid), &state, &ppid) && ppid == parent && state != 'Z') {
      kids.push_back(static_cast<int>(pid));
    }
  }
  closedir(d);
  return kids;
}

// One initdb per test process; each server copies the template (much faster than initdb).
class Template {
 public:
  static const std::string& Dir() {
    static Template t;
    return t.data_dir_;
  }
  ~Template() {
    std::error_code ec;
    if (!base_.empty()) fs::remove_all(base_, ec);
  }

 private:
  Template() {
    base_ = MakeTempDir("pgvigil-template");
    data_dir_ = base_ + "/data";
    std::string out;
    // 1 MB WAL segments keep the copy small (16 MB otherwise).
    int rc = RunArgv({std::string(kPgBin) + "initdb", "-D", data_dir_, "-U", "postgres", "-A",
                      "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--wal-segsize=1"},
                     base_, &out, nullptr);
    if (rc != 0) throw std::runtime_error("initdb failed (" + std::to_string(rc) + "): " + out);
    // The role and extension every server needs, created once: a unix-socket-only start.
    std::string log = base_ + "/template.log";
    rc = RunArgv(
        {std::string(kPgBin) + "pg_ctl", "-D", data_dir_, "-l", log, "-w", "-t", "60", "-o",
         "-c listen_addresses='' -c fsync=off -c unix_socket_directories=" + base_, "start"},
        base_, &out, nullptr);
    if (rc != 0) {
      throw std::runtime_error("template start failed: " + out + "\n" + Tail(ReadTextFile(log)));
    }
    std::string quoted;
    for (char c : std::string(kPassword))
      quoted += (c == '\'') ? std::string("''") : std::string(1, c);
    std::string sql = std::string("CREATE ROLE ") + kUser + " LOGIN PASSWORD '" + quoted +
                      "'; GRANT pg_monitor TO " + kUser + "; CREATE EXTENSION pg_stat_statements;";
    std::string err;
    int psql_rc = RunArgv({"/usr/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", base_, "-U",
                           "postgres", "-d", "postgres", "-c", sql},
                          base_, &out, &err);
    rc = RunArgv({std::string(kPgBin) + "pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "stop"},
                 base_, &out, nullptr);
    if (psql_rc != 0) throw std::runtime_error("template setup failed: " + err);
    if (rc != 0) throw std::runtime_error("template stop failed: " + out);
    std::error_code ec;
    fs::remove(data_dir_ + "/postmaster.opts", ec);
  }
  std::string base_, data_dir_;
};

std::mutex template_mu;

}  // namespace

int RunCommand(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  std::string out;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (output) *output = std::move(out);
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int FreeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("bind to a free port failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// ---------------------------------------------------------------------------------------------

PgServer::PgServer(PgServerOptions options) : options_(std::move(options)) {
  std::string template_dir;
  {
    std::lock_guard lock(template_mu);
    template_dir = Template::Dir();
  }
  base_dir_ = MakeTempDir("pgvigil-pg");
  data_dir_ = base_dir_ + "/data";
  socket_dir_ = base_dir_;
  std::string out;
  int rc = RunArgv({"/bin/cp", "-a", template_dir, data_dir_}, base_dir_, &out, nullptr);
  if (rc != 0) throw std::runtime_error("copying the template data dir failed: " + out);

  std::string conf;
  conf += "\n# pgvigil test harness\n";
  conf += "listen_addresses = '127.0.0.1'\n";
  conf += "unix_socket_directories = '" + socket_dir_ + "'\n";
  conf += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  conf += "shared_buffers = 16MB\nmax_connections = 40\n";
  conf += "password_encryption = 'scram-sha-256'\n";
  if (options_.pg_stat_statements) {
    conf += "shared_preload_libraries = 'pg_stat_statements'\n";
    conf += "pg_stat_statements.track = all\n";
  }
  for (const auto& line : options_.extra_conf) conf += line + "\n";
  AppendFile(data_dir_ + "/postgresql.conf", conf);
  WriteFile(data_dir_ + "/pg_hba.conf",
            "local all all trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n");
  port_ = FreeTcpPort();
  if (options_.start) Start();
}

PgServer::~PgServer() {
  try {
    Thaw();
    if (running()) {
      std::string out;
      RunArgv({std::string(kPgBin) + "pg_ctl", "-D", data_dir_, "-m", "immediate", "-w", "-t", "10",
               "stop"},
              base_dir_, &out, nullptr);
      if (running()) Kill();
    }
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(base_dir_, ec);
}

void PgServer::Start() {
  if (running()) return;
  std::string log = base_dir_ + "/postgres.log";
  for (int attempt = 0;; ++attempt) {
    // The last `port` line wins; a retry after a bind race appends a fresh one.
    AppendFile(data_dir_ + "/postgresql.conf", "port = " + std::to_string(port_) + "\n");
    std::string out;
    int rc = RunArgv(
        {std::string(kPgBin) + "pg_ctl", "-D", data_dir_, "-l", log, "-w", "-t", "30", "start"},
        base_dir_, &out, nullptr);
    if (rc == 0) break;
    std::string server_log = ReadTextFile(log);
    if (attempt < 3 && server_log.find("could not bind") != std::string::npos) {
      port_ = FreeTcpPort();
      continue;
    }
    throw std::runtime_error("pg_ctl start failed: " + out + "\nserver log:\n" + Tail(server_log));
  }
  // The template has the extension; a server configured without it should not have it.
  if (!options_.pg_stat_statements && !extension_dropped_) {
    Psql("DROP EXTENSION IF EXISTS pg_stat_statements");
    extension_dropped_ = true;
  }
}

void PgServer::Stop() {
  if (!running()) return;
  Thaw();
  std::string out;
  int rc = RunArgv(
      {std::string(kPgBin) + "pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "-t", "30", "stop"},
      base_dir_, &out, nullptr);
  if (rc != 0) throw std::runtime_error("pg_ctl stop failed: " + out);
}

int PgServer::postmaster_pid() const {
  std::ifstream in(data_dir_ + "/postmaster.pid");
  int pid = 0;
  if (!(in >> pid)) return 0;
  return pid;
}

bool PgServer::running() const { return Alive(postmaster_pid()); }

void PgServer::Kill() {
  int pm = postmaster_pid();
  // postmaster.pid line 7: "<shm key> <shm id>" of the SysV segment we clean up afterwards.
  int shm_id = -1;
  {
    std::ifstream in(data_dir_ + "/postmaster.pid");
    std::string line;
    for (int i = 1; std::getline(in, line); ++i) {
      if (i == 7) {
        std::istringstream ls(line);
        long key = 0;
        ls >> key >> shm_id;
      }
    }
  }
  if (pm > 0) {
    std::vector<int> kids = ChildrenOf(pm);
    kill(pm, SIGKILL);
    kill(pm, SIGCONT);
    for (int k : kids) kill(k, SIGKILL);
    // Backends forked in the meantime (the postmaster may have been mid-fork).
    for (int k : ChildrenOf(pm)) kill(k, SIGKILL);
    auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      bool any = Alive(pm);
      for (int k : kids) any = any || Alive(k);
      if (!any) break;
      std::this_thread::sleep_for(10ms);
    }
  }
  if (shm_id >= 0) shmctl(shm_id, IPC_RMID, nullptr);
  std::error_code ec;
  fs::remove(data_dir_ + "/postmaster.pid", ec);
  fs::remove(socket_dir_ + "/.s.PGSQL." + std::to_string(port_) + ".lock", ec);
  fs::remove(socket_dir_ + "/.s.PGSQL." + std::to_string(port_), ec);
}

void PgServer::Freeze() {
  int pm = postmaster_pid();
  if (pm <= 0) return;
  kill(pm, SIGSTOP);  // first, so it forks no new backend while we stop the others
  for (int round = 0; round < 2; ++round) {
    for (int k : ChildrenOf(pm)) kill(k, SIGSTOP);
  }
}

void PgServer::Thaw() {
  int pm = postmaster_pid();
  if (pm <= 0) return;
  for (int k : ChildrenOf(pm)) kill(k, SIGCONT);
  kill(pm, SIGCONT);
}

std::string PgServer::Url(const std::string& dbname) const {
  return LoopbackUrl(port_, kPassword, dbname);
}

std::string PgServer::UrlWithPassword(const std::string& password) const {
  return LoopbackUrl(port_, password, "postgres");
}

std::string PgServer::Psql(const std::string& sql, const std::string& dbname) const {
  std::string out, err;
  int rc = RunArgv({"/usr/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-h", socket_dir_,
                    "-p", std::to_string(port_), "-U", "postgres", "-d", dbname, "-c", sql},
                   base_dir_, &out, &err);
  if (rc != 0) {
    throw std::runtime_error("psql failed (" + std::to_string(rc) + ") for `" + sql + "`: " + err);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// ---------------------------------------------------------------------------------------------

PgBouncer::PgBouncer(const PgServer& backend) : PgBouncer(backend.port()) {}

PgBouncer::PgBouncer(int backend_port) {
  dir_ = MakeTempDir("pgvigil-bouncer");
  port_ = FreeTcpPort();
  std::string ini;
  ini += "[databases]\n";
  ini += "* = host=127.0.0.1 port=" + std::to_string(backend_port) + "\n";
  ini += "[pgbouncer]\n";
  ini += "listen_addr = 127.0.0.1\n";
  ini += "listen_port = " + std::to_string(port_) + "\n";
  ini += "unix_socket_dir = " + dir_ + "\n";
  ini += "auth_type = scram-sha-256\n";
  ini += "auth_file = " + dir_ + "/userlist.txt\n";
  ini += "pool_mode = transaction\n";
  ini += "max_client_conn = 100\ndefault_pool_size = 5\n";
  ini += "ignore_startup_parameters = extra_float_digits\n";
  ini += "logfile = " + dir_ + "/pgbouncer.log\n";
  ini += "server_login_retry = 1\n";
  WriteFile(dir_ + "/pgbouncer.ini", ini);
  WriteFile(dir_ + "/userlist.txt", std::string("\"") + kUser + "\" \"" + kPassword + "\"\n");
  chmod((dir_ + "/userlist.txt").c_str(), 0600);

  Spawned s =
      Spawn({"/usr/sbin/pgbouncer", dir_ + "/pgbouncer.ini"}, dir_, true, dir_ + "/stdout.log");
  pid_ = s.pid;
  auto until = std::chrono::steady_clock::now() + 15s;
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) break;
    int status = 0;
    bool exited = waitpid(pid_, &status, WNOHANG) == pid_;
    if (exited || std::chrono::steady_clock::now() > until) {
      if (!exited) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = 0;
      std::string log = ReadTextFile(dir_ + "/stdout.log") + ReadTextFile(dir_ + "/pgbouncer.log");
      std::error_code ec;
      fs::remove_all(dir_, ec);
      throw std::runtime_error("pgbouncer did not start: " + Tail(log));
    }
    std::this_thread::sleep_for(20ms);
  }
}

PgBouncer::~PgBouncer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);  // 1.18: immediate shutdown
    int status = 0;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PgBouncer::Url(const std::string& dbname) const {
  return LoopbackUrl(port_, kPassword, dbname);
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace pgvigil::test
