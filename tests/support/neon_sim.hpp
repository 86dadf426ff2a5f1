#pragma once
// NeonSim: a small stand-in for Neon in tests and the demo, in front of a real PgServer.
//  - A TCP proxy on loopback (port 0). After `suspend_after` without client connections it
//    stops the server (the compute suspends); the next client connection starts it again after
//    an extra `cold_start_delay` (the cold start), then bytes are proxied both ways, one thread
//    per connection (at most max_connections).
//  - RefuseWith(text): new connections get Neon's proxy error instead (after the startup packet;
//    SSLRequest/GSSENCRequest are answered 'N'): ErrorResponse FATAL, SQLSTATE XX000.
//  - A fake control-plane API (httplib, port 0): GET /projects/{p}/endpoints/{e} with
//    current_state (active while the server runs, idle while stopped, init while starting),
//    suspend_timeout_seconds, last_active; enforces "Authorization: Bearer <api_key>" (401),
//    404 for other ids, optional 429 with Retry-After or a forced status.
// Thread-safe: the accessors may be called from the test thread while the proxy runs. The
// PgServer must outlive the sim and must not be started/stopped by the test meanwhile.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

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

struct NeonSimOptions {
  std::chrono::milliseconds suspend_after{3000};  // 0 = never suspend on its own
  std::chrono::milliseconds cold_start_delay{0};  // extra delay before starting the server
  std::string project_id = "sim-project-123";
  std::string endpoint_id = "ep-sim-compute-123456";
  std::string api_key = "sim-neon-api-key-0123456789";
  int max_connections = 32;
  bool start_suspended = false;  // stop the server at construction
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

  std::string compute_state() const;  // "active" | "init" | "idle"
  // Waits until compute_state() == state; false on timeout.
  bool WaitForState(const std::string& state, std::chrono::milliseconds timeout) const;
  void SuspendNow();  // stops the server if no client is connected; returns when done
  void SetAutoSuspend(bool on);

  std::uint64_t connections_accepted() const { return accepted_.load(); }
  int open_connections() const;
  int suspends() const;
  int cold_starts() const;
  std::optional<std::chrono::milliseconds> last_cold_start() const;  // delay seen by the client
  std::chrono::system_clock::time_point last_active() const;

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
  void AcceptLoop();
  void MonitorLoop();
  void HandleConnection(Worker* w);
  bool EnsureAwake();  // false when stopping
  void ReapWorkers(bool all);
  void StartApi();

  PgServer& server_;
  NeonSimOptions options_;
  int listen_fd_ = -1;
  int port_ = 0;
  int api_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> api_requests_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string state_ = "active";
  int open_ = 0;
  bool auto_suspend_ = true;
  int suspends_ = 0;
  int cold_starts_ = 0;
  std::optional<std::chrono::milliseconds> last_cold_start_;
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::system_clock::time_point last_active_wall_;
  std::optional<std::string> refusal_;
  bool rate_limited_ = false;
  int retry_after_seconds_ = 1;
  int forced_status_ = 0;

  std::mutex workers_mu_;
  std::list<std::unique_ptr<Worker>> workers_;
  std::thread accept_thread_;
  std::thread monitor_thread_;
  struct Api;
  std::unique_ptr<Api> api_;
};

}  // namespace pgvigil::test
