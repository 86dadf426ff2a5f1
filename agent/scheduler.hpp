#pragma once
// Scheduler: the one thread that talks to the database. It owns the pool, runs the probe on its
// timer, then (on the same connection, when due) the activity and statement samplers and the
// database statistics; it feeds the health model, metrics and traces, follows the Neon suspend
// policy, and publishes an immutable Snapshot after every turn. With neon.sampling_url set the
// samplers and statistics use a second pool on that URL (the direct host) while the probe keeps
// the main (pooler) URL; both pools close together when the Neon policy lets the compute sleep. The
// loop turns at least once a second (the heartbeat /livez watches), and every database call has a
// deadline. No exception leaves the thread: one thrown by a collector, the probe, the loop itself
// or a JSON dump is caught, counted (pgvigil_internal_errors_total{component}), logged, shown in
// /health (internal_errors) and the loop goes on.
// Start/Stop/RequestWake are thread-safe; everything else is private to the thread.
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "config/settings.hpp"
#include "db/pool.hpp"
#include "health/health_model.hpp"
#include "health/snapshot.hpp"
#include "telemetry/metrics.hpp"

namespace pgvigil {

class QuerySampling;
class DbStatsCollector;
class Tracer;
class ScopedSpan;
class NeonWatch;
class OtlpExporter;
class StatsLeader;
struct Decision;
struct OwnUsage;

// Optional parts, owned by the composition root; null when off.
struct SchedulerParts {
  QuerySampling* sampling = nullptr;
  DbStatsCollector* db_stats = nullptr;
  Tracer* tracer = nullptr;
  OtlpExporter* exporter = nullptr;  // only for its /health status
  NeonWatch* neon = nullptr;
  StatsLeader* leader = nullptr;  // fleet: only the elected stats leader runs database-wide jobs
};

class Scheduler {
 public:
  Scheduler(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
            AgentMetrics& metrics, SchedulerParts parts = {});
  ~Scheduler();  // stops the thread first

  void Start();
  // Stops the loop (an in-flight database call ends at its deadline), closes the pool.
  void Stop();
  // Asks the loop to look at the database now (POST /wake). Thread-safe, never blocks.
  void RequestWake();

 private:
  using SteadyClock = std::chrono::steady_clock;
  void Run(std::stop_token stop);
  void Turn();  // one turn of the loop: Neon policy, probe and samplers when due, pool upkeep
  // Runs `fn`; an exception is caught, counted under `component` and remembered for /health.
  // Returns false when one was caught.
  bool Guarded(const char* component, const std::function<void()>& fn);
  std::string InternalErrorsJson() const;
  void Cycle(bool probe_now);
  // Runs the samplers that are due on `conn`, or on a connection of sampling_pool_ when set.
  void RunSamplers(Connection& conn);
  void RunSamplersOn(Connection& conn);
  // No stale series: drops the database-wide series (pg_*, last sampling window) when this
  // sidecar cannot vouch for them (probe failed, database asleep, not the stats leader).
  void ForgetDatabaseSeries();
  OwnUsage OwnUsageNow() const;
  void TraceLongRunning(const ScopedSpan& sampler,
                        std::chrono::system_clock::time_point sampled_at);
  void Apply(const Decision& d);
  void ObserveProbe(const ProbeResult& r, bool count_failure);
  void Publish();
  void WaitUntil(std::stop_token& stop, SteadyClock::time_point t);

  const Settings& settings_;
  SnapshotStore& snapshots_;
  Lifecycle& lifecycle_;
  AgentMetrics& metrics_;
  SchedulerParts parts_;
  AbortSignal abort_;  // before the pools: they hold it; Stop triggers it
  Pool pool_;
  std::optional<Pool> sampling_pool_;   // neon.sampling_url; samplers use pool_ without it
  bool sampling_pool_failing_ = false;  // logs the transitions of its connects, not every one
  HealthModel health_;
  std::uint64_t sequence_ = 0;
  SteadyClock::time_point next_probe_{};
  SteadyClock::time_point next_activity_{};
  SteadyClock::time_point next_statements_{};
  SteadyClock::time_point next_db_stats_{};
  bool probing_ = true;  // false while the Neon policy keeps away from the compute
  std::map<std::string, std::uint64_t> internal_errors_;  // caught exceptions by component
  std::string last_internal_error_;                       // "component: what"
  std::optional<std::chrono::system_clock::time_point> last_internal_error_at_;

  std::mutex wake_mu_;
  std::condition_variable_any wake_cv_;
  bool wake_requested_ = false;
  std::jthread thread_;  // last: started last, stopped first
};

}  // namespace pgvigil
