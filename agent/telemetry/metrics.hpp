#pragma once
// AgentMetrics: pgvigil's Prometheus registry and every metric the core declares, in one place
// (Envoy style). Updated by the scheduler, serialized by /metrics. Thread-safe (prometheus-cpp
// metrics are atomic; Serialize takes the registry's lock only).
//
// Core families:
//   pg_up                                    gauge   1 when the last probe succeeded
//   pgvigil_db_state{state}                  gauge   one-hot over DbStateName values
//   pgvigil_probe_duration_seconds           histogram of successful probe query latency
//   pgvigil_probes_total{outcome}            counter outcome = "ok" | ErrorKindName
//                                            (ok and common kinds exist from the start)
//   pgvigil_connect_duration_seconds         histogram of successful connects
//   pgvigil_pool_connections{state}          gauge   state = idle|busy
//   pgvigil_pool_max_connections             gauge
//   pgvigil_pool_connections_opened_total    counter
//   pgvigil_pool_connections_closed_total{reason}  counter lifetime|idle|broken|shutdown
//   pgvigil_pool_connect_errors_total{reason}      counter ErrorKindName
//   pgvigil_sampling_pool_connections                  gauge   open connections of the separate
//   pgvigil_sampling_pool_connections_opened_total     counter sampling pool (neon.sampling_url;
//   pgvigil_sampling_pool_connect_errors_total{reason} counter all 0 without one)
//   pgvigil_last_probe_timestamp_seconds, pgvigil_last_success_timestamp_seconds  gauges
//   pgvigil_state_changes_total              counter
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

  void RecordProbe(const ProbeResult& r);
  void SetState(DbState s, bool changed);
  void UpdatePool(const PoolStats& s);          // gauges set, counters advanced by the delta
  void UpdateSamplingPool(const PoolStats& s);  // the same for the neon.sampling_url pool
  void RecordInternalError(const std::string& component);

  // Text exposition format 0.0.4 of everything registered plus process_* metrics.
  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* pg_up_;
  std::map<DbState, prometheus::Gauge*> state_;
  prometheus::Histogram* probe_duration_;
  prometheus::Family<prometheus::Counter>* probes_;
  prometheus::Histogram* connect_duration_;
  prometheus::Gauge* pool_idle_;
  prometheus::Gauge* pool_busy_;
  prometheus::Gauge* pool_max_;
  prometheus::Counter* pool_opened_;
  prometheus::Family<prometheus::Counter>* pool_closed_;
  prometheus::Family<prometheus::Counter>* pool_connect_errors_;
  prometheus::Gauge* last_probe_ts_;
  prometheus::Gauge* last_success_ts_;
  prometheus::Counter* state_changes_;
  prometheus::Family<prometheus::Counter>* internal_errors_;
  prometheus::Gauge* sampling_pool_open_;
  prometheus::Counter* sampling_pool_opened_;
  prometheus::Family<prometheus::Counter>* sampling_pool_connect_errors_;
  std::mutex pool_mu_;  // guards the last-seen totals below
  PoolStats last_pool_;
  PoolStats last_sampling_pool_;
};

}  // namespace pgvigil
