#pragma once
// SpanBuffer: the most recent kept spans, for GET /traces. A bounded ring (oldest evicted);
// fed by the Tracer as a SpanSink, read by HTTP threads. Thread-safe (one short mutex; the
// JSON is rendered from a copy, outside the lock).
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracing/otlp_json.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"

namespace pgvigil {

class SpanBuffer : public SpanSink {
 public:
  SpanBuffer(size_t capacity, TraceResource resource);

  void Consume(const std::vector<Span>& spans) override;

  // Newest first: at most `limit` spans lasting at least `min_duration` (when set) and, with
  // `errors_only`, only spans with ERROR status. Filters apply per span.
  std::vector<Span> Query(std::optional<std::chrono::nanoseconds> min_duration, bool errors_only,
                          size_t limit) const;

  size_t size() const;
  size_t capacity() const { return capacity_; }
  std::uint64_t evicted() const;  // spans pushed out by newer ones since start
  const TraceResource& resource() const { return resource_; }

 private:
  const size_t capacity_;
  const TraceResource resource_;
  mutable std::mutex mu_;
  std::deque<Span> spans_;  // oldest at front; guarded by mu_
  std::uint64_t evicted_ = 0;
};

// The OTLP ExportTraceServiceRequest JSON document for GET /traces.
std::string TracesJson(const SpanBuffer& buffer,
                       std::optional<std::chrono::nanoseconds> min_duration, bool errors_only,
                       size_t limit);

// GET /traces query parameters: min_duration=250ms (units ns, us, ms, s, m, h; decimals and
// combinations like "1m30s" allowed), error=true|false|1|0, limit=N (1..capacity; default
// kDefaultTracesLimit, capped at the buffer's capacity by TracesJson's caller).
struct TracesQuery {
  static constexpr size_t kDefaultLimit = 100;
  std::optional<std::chrono::nanoseconds> min_duration;
  bool errors_only = false;
  size_t limit = kDefaultLimit;
};

// `params` is httplib::Params (a multimap). On bad input returns nullopt and sets `error` to a
// sentence naming the parameter, the bad value and what is accepted (for a 400 response).
std::optional<TracesQuery> ParseTracesQuery(const std::multimap<std::string, std::string>& params,
                                            std::string* error);

// "250ms" -> 250ms; see TracesQuery. nullopt on anything else (no bare numbers, no sign).
std::optional<std::chrono::nanoseconds> ParseSpanDuration(std::string_view text);

}  // namespace pgvigil
