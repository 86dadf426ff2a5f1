#pragma once
// HttpServer: cpp-httplib server for the Kubernetes probes, /health, /health/db and /metrics.
// Handlers only read the published Snapshot, Lifecycle flags and the metrics registry: they
// never touch libpq. Only GET/HEAD on known paths (405 otherwise, 404 for unknown paths),
// bounded request size, read/write timeouts, keep-alive.
// Thread-safe: Start/Stop from the main thread; handlers run on the server's worker threads.
//
//   /livez      200 while the scheduler heartbeat is fresh (never depends on the database)
//   /startupz   200 once config is loaded and listeners are up (and, if configured, the first
//               probe finished)
//   /readyz     200 when started and not shutting down (and the DB usable, if configured)
//   /health/db  200 when the database state is usable (up, degraded, idle), else 503
//   /health     JSON document (RenderHealthJson below); 503 when the status is "unavailable"
//   /metrics    Prometheus text format
// Connections are served by GuardedServer's event loop (guarded_server.hpp): slow or idle
// clients never hold a thread, probes go first, Range is ignored.
// Start sets lifecycle.listening once bound; Stop clears it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/settings.hpp"
#include "health/snapshot.hpp"
#include "net/http_route.hpp"
#include "telemetry/metrics.hpp"

namespace prometheus {
class Counter;
class Gauge;
}  // namespace prometheus

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace pgvigil {

class GuardedServer;

class HttpServer {
 public:
  HttpServer(const Settings& settings, const SnapshotStore& snapshots, Lifecycle& lifecycle,
             AgentMetrics& metrics);
  ~HttpServer();

  // Extra endpoints from other modules (/queries, /traces, POST /wake). Before Start only.
  void AddRoute(HttpRoute route);
  // Binds settings.http.listen (port 0 picks a free port) and starts serving on a background
  // thread. Returns false with a message naming the address on failure.
  bool Start(std::string* error);
  // Stops accepting, lets in-flight requests finish, joins. Idempotent.
  void Stop();
  int port() const { return port_; }
  // Caps the connection front lower than RLIMIT_NOFILE would (tests); before Start.
  void SetConnectionLimitsForTest(size_t max_connections, size_t per_client) {
    test_limits_ = {max_connections, per_client};
  }

 private:
  void AddBuiltinRoutes();
  // Copies the connection front's counters into the metrics registry (at each scrape).
  void SyncFrontMetrics();
  // The single entry point of every request: 404 for unknown paths, 405 + Allow for a known
  // path with another method, else the route's handler.
  void Dispatch(const httplib::Request& req, httplib::Response& res) const;

  const Settings& settings_;
  const SnapshotStore& snapshots_;
  Lifecycle& lifecycle_;
  AgentMetrics& metrics_;
  std::unique_ptr<GuardedServer> server_;
  std::pair<size_t, size_t> test_limits_{0, 0};
  prometheus::Gauge* connections_open_;
  prometheus::Gauge* connections_max_;
  std::mutex front_metrics_mu_;
  std::map<std::string, std::pair<prometheus::Counter*, uint64_t>> dropped_;  // reason -> seen
  std::vector<HttpRoute> routes_;
  std::thread thread_;
  std::atomic<bool> thread_done_{false};
  int port_ = 0;
};

// "ok" (up, idle), "degraded" (degraded, starting, waking) or "unavailable" (down,
// misconfigured): the "status" of /health.
std::string_view HealthStatusName(DbState s);

// The JSON body of /health. Pure; used by the handler and by tests.
std::string RenderHealthJson(const Snapshot& s, const Lifecycle& lifecycle, bool ready);

}  // namespace pgvigil
