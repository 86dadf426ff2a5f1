#pragma once
// CollectorMetrics: the health metrics every periodic database collector reports, shared by the
// pgstats collectors and the samplers so the families are declared once, with one help text:
//
//   pgvigil_collector_duration_seconds{collector}              gauge    duration of the last run
//                                                      (the bundle's, for a part of the bundle)
//   pgvigil_collector_errors_total{collector}                  counter  failed runs
//   pgvigil_collector_last_success_timestamp_seconds{collector} gauge   Unix time of last success
//
// prometheus-cpp 1.0.1's Registry (default InsertBehavior::Merge) returns the existing family when
// a name is registered again with the same constant labels, so any number of CollectorMetrics may
// share one registry; two instances with the same collector name share their series.
// Thread-safe (prometheus-cpp metrics are atomic). The registry must outlive it.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <string>

namespace pgvigil {

class CollectorMetrics {
 public:
  // Creates the three series for `collector` (errors at 0, last success at 0 = never).
  CollectorMetrics(prometheus::Registry& registry, std::string collector);

  void RecordSuccess(std::chrono::duration<double> took,
                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  void RecordFailure(std::chrono::duration<double> took);

  const std::string& collector() const { return collector_; }
  double errors() const { return errors_->Value(); }
  double last_success_unix() const { return last_success_->Value(); }  // 0 = never

 private:
  std::string collector_;
  prometheus::Gauge* duration_;
  prometheus::Counter* errors_;
  prometheus::Gauge* last_success_;
};

}  // namespace pgvigil
