#include "telemetry/collector_metrics.hpp"

#include <prometheus/family.h>

#include "util/time_format.hpp"

namespace pgvigil {

CollectorMetrics::CollectorMetrics(prometheus::Registry& registry, std::string collector)
    : collector_(std::move(collector)) {
  const prometheus::Labels labels{{"collector", collector_}};
  duration_ = &prometheus::BuildGauge()
                   .Name("pgvigil_collector_duration_seconds")
                   .Help(
                       "Duration of the last run of a database statistics collector (for "
                       "the collectors that ran together in one bundle statement, the "
                       "bundle's).")
                   .Register(registry)
                   .Add(labels);
  errors_ = &prometheus::BuildCounter()
                 .Name("pgvigil_collector_errors_total")
                 .Help("Runs of a database statistics collector that failed.")
                 .Register(registry)
                 .Add(labels);
  last_success_ = &prometheus::BuildGauge()
                       .Name("pgvigil_collector_last_success_timestamp_seconds")
                       .Help("Unix time of the last successful run of a collector (0 = never).")
                       .Register(registry)
                       .Add(labels);
}

void CollectorMetrics::RecordSuccess(std::chrono::duration<double> took,
                                     std::chrono::system_clock::time_point now) {
  duration_->Set(took.count());
  last_success_->Set(ToUnixSeconds(now));
}

void CollectorMetrics::RecordFailure(std::chrono::duration<double> took) {
  duration_->Set(took.count());
  errors_->Increment();
}

}  // namespace pgvigil
