#include "sampling/long_running_spans.hpp"

#include "tracing/span.hpp"
#include "tracing/tracer.hpp"

namespace pgvigil {

void TraceLongRunningQueries(Tracer& tracer, const ScopedSpan& sampler,
                             const ActivitySampler& activity,
                             std::chrono::system_clock::time_point sampled_at,
                             QueryTextMode query_text) {
  if (!sampler.active()) return;
  for (const auto& sample : activity.recent()) {
    if (sample.sampled_at != sampled_at) break;  // newest first: older runs follow
    const double seconds = sample.query_seconds.value_or(sample.duration_seconds);
    const auto start = sampled_at - std::chrono::duration_cast<SpanTime::duration>(
                                        std::chrono::duration<double>(seconds));
    auto span =
        tracer.StartSpan("pgvigil.long_running_query", SpanKind::kInternal, &sampler, start);
    span.SetAttribute("pgvigil.observed", true)
        .SetAttribute("pgvigil.backend.pid", static_cast<std::int64_t>(sample.pid))
        .SetAttribute("pgvigil.backend.state", sample.state)
        .SetAttribute("pgvigil.backend.database", sample.datname)
        .SetAttribute("pgvigil.backend.user", sample.usename)
        .SetAttribute("pgvigil.backend.application_name", sample.application_name)
        .SetAttribute("pgvigil.query.fingerprint", sample.text.fingerprint);
    if (!sample.wait_event_type.empty()) {
      span.SetAttribute("pgvigil.backend.wait_event",
                        sample.wait_event_type + ":" + sample.wait_event);
    }
    if (query_text == QueryTextMode::kObfuscated) {
      span.SetAttribute("pgvigil.query.text", sample.text.text);
    }
    if (sample.traceparent) {
      span.AddLink(SpanLink{sample.traceparent->trace_id,
                            sample.traceparent->parent_id,
                            sample.traceparent->flags,
                            true,
                            {}});
    }
    span.End(sampled_at);
  }
}

}  // namespace pgvigil
