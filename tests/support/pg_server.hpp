#pragma once
// Test harness: real servers started on loopback for the test suite, torn down on destruction.
// PgServer: Debian's PostgreSQL 15 (`initdb` into a temp dir, pg_stat_statements preloaded,
// scram password auth over TCP for role `vigil` / password kPassword, trust on the unix socket).
// PgBouncer: Debian's pgbouncer in pool_mode=transaction in front of a PgServer.
// When running as root, the servers run as the `postgres` user (they refuse root).
// initdb runs once per test process; each PgServer copies that template (fast) to its temp dir.
// Not thread-safe; one test owns each instance.
#include <string>
#include <vector>

namespace pgvigil::test {

inline constexpr const char* kPassword = "S3cr3t-p@ss/w0rd";  // deliberately needs %-encoding
inline constexpr const char* kUser = "vigil";

int FreeTcpPort();  // a currently unused loopback port

struct PgServerOptions {
  bool pg_stat_statements = true;
  std::vector<std::string> extra_conf;  // lines appended to postgresql.conf
  bool start = true;                    // false: initdb only; call Start() later
};

class PgServer {
 public:
  explicit PgServer(PgServerOptions options = {});
  ~PgServer();  // stops (immediate) and removes the data dir
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  void Start();   // pg_ctl start -w; waits until it accepts connections
  void Stop();    // pg_ctl stop -m fast
  void Kill();    // SIGKILL the postmaster and all its children; Start() works again after
  void Freeze();  // SIGSTOP the postmaster and all its backends
  void Thaw();    // SIGCONT them
  bool running() const;

  int port() const { return port_; }
  // postgresql://vigil:<percent-encoded password>@127.0.0.1:port/postgres
  std::string Url(const std::string& dbname = "postgres") const;
  std::string UrlWithPassword(const std::string& password) const;
  // Runs SQL as superuser `postgres` over the unix socket (psql -X -v ON_ERROR_STOP=1 -tA);
  // returns stdout without trailing newlines. Throws std::runtime_error (with stderr) on failure.
  std::string Psql(const std::string& sql, const std::string& dbname = "postgres") const;
  std::string data_dir() const { return data_dir_; }
  std::string socket_dir() const { return socket_dir_; }
  int postmaster_pid() const;

 private:
  PgServerOptions options_;
  std::string base_dir_, data_dir_, socket_dir_;
  int port_ = 0;
  bool extension_dropped_ = false;
};

class PgBouncer {
 public:
  explicit PgBouncer(const PgServer& backend);  // starts it; waits until it accepts
  // In front of any loopback server speaking the protocol (e.g. a NeonSim's proxy port).
  explicit PgBouncer(int backend_port);
  ~PgBouncer();
  int port() const { return port_; }
  std::string Url(const std::string& dbname = "postgres") const;

 private:
  std::string dir_;
  int port_ = 0;
  int pid_ = 0;
};

// Runs a shell command, returns its exit status; output goes to `output` when given.
int RunCommand(const std::string& cmd, std::string* output = nullptr);

// The whole file as text ("" when it cannot be read).
std::string ReadTextFile(const std::string& path);

}  // namespace pgvigil::test
