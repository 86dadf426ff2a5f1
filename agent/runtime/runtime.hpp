#pragma once
// Runtime: the database side of pgvigil, composed. Owns the pools (ConnectionSource), the probe
// (ProbeJob over the real PoolProbeSource), the list of jobs (samplers, database statistics) and
// the Scheduler thread that runs them; publishes an immutable Snapshot after every turn. With
// neon.sampling_url set the jobs use a second pool on that URL (the direct host) while the probe
// keeps the main (pooler) URL; both pools close together when the Neon policy lets the compute
// sleep. Every database call has a deadline.
// Start/Stop/RequestWake are thread-safe; everything else runs on the scheduler thread.
#include <memory>
#include <vector>

#include "config/settings.hpp"
#include "db/abort_signal.hpp"
#include "health/snapshot.hpp"
#include "runtime/connection_source.hpp"
#include "runtime/probe_job.hpp"
#include "runtime/probe_source.hpp"
#include "runtime/scheduler.hpp"
#include "telemetry/metrics.hpp"

namespace pgvigil {

class QuerySampling;
class DbStatsCollector;
class Tracer;
class NeonWatch;
class OtlpExporter;
class StatsLeader;

// Optional parts, owned by the composition root; null when off.
struct RuntimeParts {
  QuerySampling* sampling = nullptr;
  DbStatsCollector* db_stats = nullptr;
  Tracer* tracer = nullptr;
  OtlpExporter* exporter = nullptr;  // only for its /health status
  NeonWatch* neon = nullptr;
  StatsLeader* leader = nullptr;  // fleet: only the elected stats leader runs database-wide jobs
};

class Runtime {
 public:
  Runtime(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
          AgentMetrics& metrics, RuntimeParts parts = {});
  ~Runtime();  // stops the thread first

  void Start();
  // Stops the loop (an in-flight database call ends at once), closes the pools.
  void Stop();
  // Asks the loop to look at the database now (POST /wake). Thread-safe, never blocks.
  void RequestWake() { scheduler_->RequestWake(); }

 private:
  void Publish();
  // No stale series: drops the database-wide series (pg_*, last sampling window) when this
  // sidecar cannot vouch for them (probe failed, database asleep, not the stats leader) and
  // makes the jobs due so they collect again as soon as this sidecar may.
  void ForgetDatabaseSeries();
  bool MayRunJobs(const JobContext& ctx);

  const Settings& settings_;
  SnapshotStore& snapshots_;
  AgentMetrics& metrics_;
  RuntimeParts parts_;
  AbortSignal abort_;  // before the pools: they hold it; Stop triggers it
  ConnectionSource connections_;
  PoolProbeSource probe_source_;
  ProbeJob probe_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::uint64_t sequence_ = 0;
  bool ahead_of_probe_ = false;           // between hooks.before_probe(true) and (false)
  std::unique_ptr<Scheduler> scheduler_;  // last: started last, stopped first
};

}  // namespace pgvigil
