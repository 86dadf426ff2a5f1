#pragma once
// AgentMetrics: pgvigil's Prometheus registry and every metric the core declares, in one place
// (Envoy style). Updated by the scheduler, serialized by /metrics. Thread-safe (prometheus-cpp
// metrics are atomic; Serialize takes the registry's lock only).
//
// Families (declared where their domain lives):
//   health/health_metrics.hpp  pg_up, pgvigil_db_state, pgvigil_probe_*, pgvigil_probes_total,
//                              pgvigil_connect_duration_seconds, pgvigil_last_*_timestamp_seconds,
//                              pgvigil_state_changes_total
//   db/pool_metrics.hpp        pgvigil_pool_*{pool="main"|"sampling"}, pgvigil_sampling_pool_*
// and here:
//   pgvigil_internal_errors_total{component} counter exceptions caught in pgvigil's threads;
//                                            component = kInternalComponents (all exist at 0)
//   pgvigil_build_info{version}              gauge 1
//   process_* (resident_memory_bytes, virtual_memory_bytes, cpu_seconds_total, open_fds,
//              max_fds, start_time_seconds)  read from /proc at scrape (process_metrics.hpp)
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "db/pool.hpp"
#include "db/pool_metrics.hpp"
#include "health/health_metrics.hpp"
#include "health/health_model.hpp"

namespace pgvigil {

// Where the scheduler catches exceptions (label values of pgvigil_internal_errors_total).
inline constexpr const char* kInternalComponents[] = {"scheduler", "probe",    "statements",
                                                      "activity",  "db_stats", "publish"};

class AgentMetrics {
 public:
  explicit AgentMetrics(std::string version);

  // Other modules (sampling, tracing, neon) register their families here.
  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }

  void RecordProbe(const ProbeResult& r) { health_.RecordProbe(r); }
  void SetState(DbState s, bool changed) { health_.SetState(s, changed); }
  // Gauges set, counters advanced by the delta: pool="main", and pool="sampling" for the
  // neon.sampling_url pool.
  void UpdatePool(const PoolStats& s) { pools_.UpdateMain(s); }
  void UpdateSamplingPool(const PoolStats& s) { pools_.UpdateSampling(s); }
  void RecordInternalError(const std::string& component);

  // Text exposition format 0.0.4 of everything registered plus process_* metrics.
  std::string Serialize() const;

 private:
  std::string SerializeFamilies() const;  // Serialize without the heap trim

  std::shared_ptr<prometheus::Registry> registry_;
  HealthMetrics health_;
  PoolMetrics pools_;
  prometheus::Family<prometheus::Counter>* internal_errors_;
};

}  // namespace pgvigil
