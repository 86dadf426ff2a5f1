#pragma once
// AgentProcess: runs the real pgvigil binary as a child process for integration tests, with a
// config file written from TOML text, its own environment, and stdout/stderr captured to a file.
// Killed (SIGKILL) on destruction if still running. Not thread-safe.
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace pgvigil::test {

struct HttpReply {
  int status = 0;  // 0 when the request failed (no connection, timeout)
  std::string body;
  std::map<std::string, std::string> headers;
  std::chrono::microseconds elapsed{0};
};

class AgentProcess {
 public:
  // `toml` is the config text; "{port}" in it is replaced by the chosen HTTP port. Extra args
  // go after --config. `env` is added to a minimal environment (PATH, HOME). `wrapper` is a
  // command line that must end by exec'ing the arguments it is given (the binary and its
  // arguments follow it), e.g. to run pgvigil inside `unshare`; pid() stays pgvigil's.
  AgentProcess(std::string toml, std::map<std::string, std::string> env,
               std::vector<std::string> extra_args = {}, std::vector<std::string> wrapper = {});
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  int port() const { return port_; }
  int pid() const { return pid_; }
  HttpReply Get(const std::string& path,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  HttpReply Request(const std::string& method, const std::string& path,
                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  // Polls until /livez answers 200.
  bool WaitHttp(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Polls /health until its database.state equals `state`.
  bool WaitState(const std::string& state, std::chrono::milliseconds timeout) const;
  // The database.state field of /health ("" when unavailable).
  std::string State() const;
  void Signal(int sig) const;
  // Waits for exit; returns the exit code, or nullopt on timeout.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  std::string Output() const;  // everything the process printed so far
  // The value of a metric line (exact series text before the value, e.g.
  // `pgvigil_db_state{state="up"}`), or nullopt.
  std::optional<double> Metric(const std::string& series) const;

 private:
  std::string dir_;
  int port_ = 0;
  int pid_ = 0;
  bool exited_ = false;
};

// Runs pgvigil to completion with the given args and env; returns exit code and output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunPgvigil(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {});

// Agent config with fast timers for tests (probe every 600ms, deadline 500ms, two failures to
// down, connect 1.5s, backoff 100-500ms), the URL from TEST_DB_URL, debug logs; `extra` is
// appended (further sections).
std::string FastAgentConfig(const std::string& extra = "");

// A numeric field of /proc/PID/status, e.g. "VmRSS" (kB) or "Threads"; -1 when absent.
long ProcStatus(int pid, const std::string& field);

// Polls `pred` every 50ms until true or timeout.
bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// The environment FastAgentConfig reads its database URL from (TEST_DB_URL).
std::map<std::string, std::string> DbUrlEnv(const std::string& url);

// The agent's /health, parsed; a discarded value (is_discarded()) when the body is not JSON.
nlohmann::json HealthOf(const AgentProcess& agent);

// Looks up a series value in Prometheus text.
std::optional<double> MetricValue(const std::string& text, const std::string& series);

// What `promtool check metrics` says of an exposition text, less its "_count suffix" remarks on
// pg_locks_count and pg_stat_activity_count (postgres_exporter's names, kept for dashboard
// compatibility): "" when the text is clean.
std::string PromtoolRemarks(const std::string& exposition);

}  // namespace pgvigil::test
