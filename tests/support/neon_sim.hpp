#pragma once
// NeonSim: a stand-in for one Neon endpoint in tests and the demo, in front of a real PgServer.
// It applies Neon's own suspend rule literally; tests must not rely on anything kinder.
//
// The rule, as Neon implements it (neondatabase/neon, read at 6a35a3e, March 2026):
//  - compute_ctl's monitor (compute_tools/src/monitor.rs, ComputeMonitor::check, every
//    MONITOR_CHECK_INTERVAL = 500 ms, over its own connection as `cloud_admin` to `postgres`)
//    sets last_active = now when
//      1. sum(active_time) or sum(sessions) of pg_stat_database over databases NOT IN
//         ('postgres','template0','template1') changed since its previous look
//         (get_database_stats; the baseline starts empty with each compute_ctl);
//    otherwise (get_backends_state_change) over client backends other than its own pid and
//    other than usename 'cloud_admin' (any database):
//      2. one of them is in a state other than 'idle' ('idle in transaction' counts) -> now;
//         else the newest state_change of the idle ones, if newer than the previous value;
//    otherwise now, when
//      3. pg_stat_replication has a walsender other than application_name 'walproposer', or
//         pg_stat_subscription a row with pid not null, or pg_stat_activity an
//         'autovacuum worker'.
//    compute.rs update_last_active() only ever moves last_active forward.
//  - The control plane suspends the compute when last_active is older than
//    suspend_timeout_seconds (libs/compute_api/src/spec.rs; 0 = default 300 s, -1 = never), with
//    a fast shutdown: sessions still open get FATAL 57P01. An idle session does NOT keep it awake.
//  - The proxy (proxy/src/proxy/mod.rs handle_client) authenticates the client first
//    (auth_backend.authenticate, with the role secret from the control plane) and only then
//    connects to the compute, waking it (connect_auth::connect_to_compute_and_auth,
//    wake_compute.rs). A wrong password never wakes a compute.
//  - A compute starts from a fresh basebackup: empty statistics.
//
// How the simulator does it:
//  - Proxy (TCP, port 0): SSLRequest/GSSENCRequest get 'N'; the StartupMessage is read by the
//    proxy, which asks for a cleartext password (AuthenticationCleartextPassword) and checks it
//    against its own role table (kUser/kPassword, cloud_admin, AddRole): the stand-in for the
//    secrets Neon's proxy gets from its control plane. We chose cleartext over SCRAM because it is
//    one message and libpq/PgBouncer answer it; what matters here is the order (authenticate,
//    then wake), not the mechanism. Only then is the compute woken (cold_start_delay + pg_ctl
//    start) and a session opened to it over the Unix socket (trust), with the client's startup
//    parameters; bytes then flow both ways. CancelRequests go to the compute as they are.
//  - Monitor thread: the rule above, query for query, every monitor_interval (500 ms, scalable)
//    over a libpq session as `cloud_admin` to `postgres` (excluded like compute_ctl excludes
//    itself). The control-plane check runs after each look: last_active (or the compute's start
//    when nothing happened yet) older than suspend_timeout -> `pg_ctl stop -m fast`, even with
//    sessions open (they get 57P01 from PostgreSQL itself).
//  - Empty statistics: before each start the files in $PGDATA/pg_stat/ (pgstat.stat and
//    pg_stat_statements.stat, written at the clean shutdown) are deleted, so PostgreSQL starts
//    with empty pg_stat_database and pg_stat_statements, like a fresh basebackup, with no window
//    in which a client could see the old values (pg_stat_reset() after start would leave one,
//    and only resets the current database).
//  - Optional internal agent (agent_interval > 0): while the compute runs, connects every
//    interval as `cloud_admin` to `postgres` over the Unix socket (as Neon's postgres_exporter /
//    sql_exporter do inside the VM) and runs a query. By the rule it never keeps the compute up.
//  - Fake control-plane API (httplib, port 0): GET /projects/{p}/endpoints/{e} -> current_state
//    (init|active|idle), last_active (RFC 3339), suspend_timeout_seconds; GET
//    /projects/{p}/operations -> start_compute/suspend_compute operations, newest first.
//    Bearer api_key enforced (401), 404 for other ids, optional 429 + Retry-After or a forced
//    status.
//  - RefuseWith(text): new connections get Neon's proxy error instead (FATAL XX000).
// Thread-safe: the accessors may be called from the test thread while the proxy runs. The
// PgServer must outlive the sim and must not be started/stopped by the test meanwhile.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/pg_server.hpp"

namespace pgvigil::test {

inline constexpr const char* kNeonWakingError = "Couldn't connect to compute node";
inline constexpr const char* kNeonDisabledError = "endpoint is disabled";
inline constexpr const char* kNeonNotFoundError =
    "endpoint cannot be found, please check the endpoint ID";
inline constexpr const char* kNeonQuotaError =
    "Your account or project has exceeded the compute time quota. endpoint is temporarily "
    "unavailable";
inline constexpr const char* kNeonSniError =
    "The endpoint ID is not specified. Either please upgrade the postgres client library (libpq) "
    "for SNI support or pass the endpoint ID (first part of the domain name) as a parameter: "
    "'?options=endpoint%3D<endpoint-id>'";
inline constexpr const char* kNeonTooManyAttemptsError =
    "Too many database connection attempts, please retry later";
inline constexpr const char* kCloudAdmin = "cloud_admin";
inline constexpr const char* kCloudAdminPassword = "cloud-admin-pw-42";

struct NeonSimOptions {
  // Control plane: suspend when last_active is older than this. 0 = never on its own (the API
  // then reports suspend_timeout_seconds = -1).
  std::chrono::milliseconds suspend_timeout{3000};
  std::chrono::milliseconds monitor_interval{500};  // compute_ctl's MONITOR_CHECK_INTERVAL
  std::chrono::milliseconds cold_start_delay{0};    // extra delay before starting the server
  std::chrono::milliseconds agent_interval{0};      // internal cloud_admin agent; 0 = off
  std::string project_id = "sim-project-123";
  std::string endpoint_id = "ep-sim-compute-123456";
  std::string api_key = "sim-neon-api-key-0123456789";
  int max_connections = 32;
  bool start_suspended = false;  // stop the server at construction
};

// One start or suspend of the compute.
struct ComputeTransition {
  std::string action;  // "start_compute" | "suspend_compute"
  std::string cause;   // "suspend_timeout", "SuspendNow", or "client user=<u> application=<a>"
  std::chrono::system_clock::time_point at;
  std::chrono::milliseconds took{0};  // a start: auth done -> accepting connections
};

class NeonSim {
 public:
  NeonSim(PgServer& server, NeonSimOptions options = {});
  ~NeonSim();
  NeonSim(const NeonSim&) = delete;
  NeonSim& operator=(const NeonSim&) = delete;

  int port() const { return port_; }
  // The PgServer's URL with the proxy's port.
  std::string Url(const std::string& dbname = "postgres") const;
  std::string ApiUrl() const;  // http://127.0.0.1:<api port>
  const NeonSimOptions& options() const { return options_; }
  void AddRole(const std::string& user, const std::string& password);  // proxy's role table

  std::string compute_state() const;  // "active" | "init" | "idle"
  // Waits until compute_state() == state; false on timeout.
  bool WaitForState(const std::string& state, std::chrono::milliseconds timeout) const;
  void SuspendNow();  // the control plane suspends now, open sessions or not; returns when done
  void SetAutoSuspend(bool on);

  std::uint64_t connections_accepted() const { return accepted_.load(); }
  std::uint64_t auth_failures() const { return auth_failures_.load(); }
  std::uint64_t agent_scrapes() const { return agent_scrapes_.load(); }
  int open_connections() const;  // proxied sessions
  int suspends() const;
  int cold_starts() const;
  std::optional<std::chrono::milliseconds> last_cold_start() const;
  std::chrono::system_clock::time_point last_active() const;
  std::vector<ComputeTransition> transitions() const;
  // Starts whose cause names this application_name.
  int wakes_by(const std::string& application_name) const;

  void RefuseWith(std::string message);  // new connections get FATAL XX000 `message`
  void StopRefusing();

  void SetApiRateLimited(bool on, int retry_after_seconds = 1);
  void SetApiStatus(int status);  // answer every API request with this status (0 = normal)
  std::uint64_t api_requests() const { return api_requests_.load(); }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
    int client_fd = -1;
  };
  struct Monitor;
  void AcceptLoop();
  void MonitorLoop();
  void AgentLoop();
  void HandleConnection(Worker* w);
  // Wakes the compute if needed; false when it could not (stopping, start failed).
  bool EnsureAwake(const std::string& cause);
  void Suspend(std::unique_lock<std::mutex>& lock, const std::string& cause);
  void StartServer();  // empty statistics, then pg_ctl start
  void ReapWorkers(bool all);
  void StartApi();
  int ConnectBackend() const;  // Unix socket of the compute, -1 on failure
  void Record(std::unique_lock<std::mutex>& lock, ComputeTransition t);

  PgServer& server_;
  NeonSimOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  int api_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> auth_failures_{0};
  std::atomic<std::uint64_t> agent_scrapes_{0};
  std::atomic<std::uint64_t> api_requests_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string state_ = "active";
  bool transition_ = false;  // a start or stop is under way (outside the lock)
  int open_ = 0;
  bool auto_suspend_ = true;
  int suspends_ = 0;
  int cold_starts_ = 0;
  std::optional<std::chrono::milliseconds> last_cold_start_;
  std::chrono::system_clock::time_point started_at_;                  // this compute's start
  std::optional<std::chrono::system_clock::time_point> last_active_;  // compute_ctl's value
  std::map<std::string, std::string> roles_;
  std::vector<ComputeTransition> transitions_;
  std::optional<std::string> refusal_;
  bool rate_limited_ = false;
  int retry_after_seconds_ = 1;
  int forced_status_ = 0;
  std::uint64_t generation_ = 0;  // bumped on every start: the monitor re-baselines

  std::mutex workers_mu_;
  std::list<std::unique_ptr<Worker>> workers_;
  std::thread accept_thread_;
  std::thread monitor_thread_;
  std::thread agent_thread_;
  struct Api;
  std::unique_ptr<Api> api_;
};

}  // namespace pgvigil::test
