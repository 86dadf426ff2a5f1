#include "tracing/tracing_metrics.hpp"

namespace pgvigil {

namespace {

constexpr const char* kDropReasons[] = {"queue_full", "export_failed", "rejected", "shutdown",
                                        "trace_too_large"};
constexpr const char* kErrorReasons[] = {"connection", "timeout",      "throttled", "unavailable",
                                         "rejected",   "server_error", "tls",       "other"};

}  // namespace

TracingMetrics::TracingMetrics(prometheus::Registry& registry) {
  recorded_ = &prometheus::BuildCounter()
                   .Name("pgvigil_spans_recorded_total")
                   .Help("Spans kept by the sampler and handed to the trace buffer and exporter")
                   .Register(registry)
                   .Add({});
  sampled_out_ = &prometheus::BuildCounter()
                      .Name("pgvigil_spans_sampled_out_total")
                      .Help("Spans discarded by ratio sampling (errors and slow spans are kept)")
                      .Register(registry)
                      .Add({});
  exported_ = &prometheus::BuildCounter()
                   .Name("pgvigil_spans_exported_total")
                   .Help("Spans accepted by the OTLP collector")
                   .Register(registry)
                   .Add({});
  auto& dropped = prometheus::BuildCounter()
                      .Name("pgvigil_spans_dropped_total")
                      .Help("Spans lost before reaching the collector, by reason")
                      .Register(registry);
  for (const char* r : kDropReasons) dropped_[r] = &dropped.Add({{"reason", r}});
  auto& errors = prometheus::BuildCounter()
                     .Name("pgvigil_span_export_errors_total")
                     .Help("Failed OTLP export attempts, by reason")
                     .Register(registry);
  for (const char* r : kErrorReasons) export_errors_[r] = &errors.Add({{"reason", r}});
  export_duration_ =
      &prometheus::BuildHistogram()
           .Name("pgvigil_span_export_duration_seconds")
           .Help("Duration of one OTLP export request")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5, 1, 2.5, 5, 10, 30});
  queue_length_ = &prometheus::BuildGauge()
                       .Name("pgvigil_span_queue_length")
                       .Help("Spans waiting in the export queue")
                       .Register(registry)
                       .Add({});
}

prometheus::Counter& TracingMetrics::dropped(std::string_view reason) {
  auto it = dropped_.find(reason);
  return it != dropped_.end() ? *it->second : *dropped_.at("export_failed");
}

prometheus::Counter& TracingMetrics::export_errors(std::string_view reason) {
  auto it = export_errors_.find(reason);
  return it != export_errors_.end() ? *it->second : *export_errors_.at("other");
}

double TracingMetrics::DroppedTotal() const {
  double total = 0;
  for (const auto& [reason, c] : dropped_) total += c->Value();
  return total;
}

}  // namespace pgvigil
