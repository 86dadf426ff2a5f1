#pragma once
// TracingMetrics: every metric of the tracing module, declared in one place and registered into
// the agent's prometheus::Registry. All label values are fixed at construction (bounded).
// Thread-safe (prometheus-cpp metrics are atomic). Must outlive the Tracer and OtlpExporter
// that use it.
//
//   pgvigil_spans_recorded_total                 counter  spans kept by the sampler
//   pgvigil_spans_sampled_out_total              counter  spans discarded by ratio sampling
//   pgvigil_spans_exported_total                 counter  spans accepted by the collector
//   pgvigil_spans_dropped_total{reason}          counter  queue_full|export_failed|rejected|
//                                                         shutdown|trace_too_large
//   pgvigil_span_export_errors_total{reason}     counter  per failed attempt: connection|timeout|
//                                                         throttled|unavailable|rejected|
//                                                         server_error|tls|other
//   pgvigil_span_export_duration_seconds         histogram of one export request (with retries
//                                                         counted separately)
//   pgvigil_span_queue_length                    gauge    spans waiting for export
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <string>
#include <string_view>

namespace pgvigil {

class TracingMetrics {
 public:
  explicit TracingMetrics(prometheus::Registry& registry);

  prometheus::Counter& recorded() { return *recorded_; }
  prometheus::Counter& sampled_out() { return *sampled_out_; }
  prometheus::Counter& exported() { return *exported_; }
  // Unknown reasons map to "other"/"export_failed" rather than creating new series.
  prometheus::Counter& dropped(std::string_view reason);
  prometheus::Counter& export_errors(std::string_view reason);
  prometheus::Histogram& export_duration() { return *export_duration_; }
  prometheus::Gauge& queue_length() { return *queue_length_; }

  double DroppedTotal() const;  // sum over reasons, for /health

 private:
  prometheus::Counter* recorded_;
  prometheus::Counter* sampled_out_;
  prometheus::Counter* exported_;
  std::map<std::string, prometheus::Counter*, std::less<>> dropped_;
  std::map<std::string, prometheus::Counter*, std::less<>> export_errors_;
  prometheus::Histogram* export_duration_;
  prometheus::Gauge* queue_length_;
};

}  // namespace pgvigil
