#pragma once
// HealthMetrics: the probe and database-state families.
//   pg_up                                    gauge   1 when the last probe succeeded
//   pgvigil_db_state{state}                  gauge   one-hot over DbStateName values
//   pgvigil_probe_duration_seconds           histogram of successful probe query latency
//                                            (SELECT 1 only, never a statement by traffic)
//   pgvigil_probes_total{outcome}            counter outcome = "ok" | ErrorKindName
//   pgvigil_probes_by_traffic_total          counter the ok probes another statement stood for
//                                            (no SELECT 1 sent, no latency observed)
//   pgvigil_connect_duration_seconds         histogram of successful connects (cold starts too)
//   pgvigil_last_probe_timestamp_seconds, pgvigil_last_success_timestamp_seconds  gauges
//   pgvigil_state_changes_total              counter
// Thread-safe (prometheus-cpp metrics are atomic).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>

#include "health/health_model.hpp"

namespace pgvigil {

class HealthMetrics {
 public:
  explicit HealthMetrics(prometheus::Registry& registry);
  void RecordProbe(const ProbeResult& r);
  void SetState(DbState s, bool changed);

 private:
  prometheus::Gauge* pg_up_;
  std::map<DbState, prometheus::Gauge*> state_;
  prometheus::Histogram* probe_duration_;
  prometheus::Family<prometheus::Counter>* probes_;
  prometheus::Counter* probes_by_traffic_;
  prometheus::Histogram* connect_duration_;
  prometheus::Gauge* last_probe_ts_;
  prometheus::Gauge* last_success_ts_;
  prometheus::Counter* state_changes_;
};

}  // namespace pgvigil
