#pragma once
// Tracer: starts spans, decides sampling per trace and hands kept traces to its sinks (the
// /traces ring buffer and the OTLP exporter).
//
// Sampling is decided when a trace's root span ends: the spans of a trace are buffered until
// then, and the whole trace is kept when the trace id falls under `sample_ratio` (the OTel
// TraceIdRatioBased rule), or when any of its spans has ERROR status or lasted at least
// `slow_threshold`. A child that ends after its root follows the root's decision (and is kept
// on its own if it is itself an error or slow).
//
// Thread-safety: Tracer is thread-safe; a ScopedSpan is used by one thread at a time, but the
// spans of one trace may end on different threads. Sinks must be thread-safe and outlive the
// Tracer; the Tracer must outlive its spans.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracing/span.hpp"
#include "tracing/tracing_metrics.hpp"

namespace pgvigil {

// Receives the spans of kept traces. Must not block for long (it runs on the caller's thread,
// usually the scheduler's).
class SpanSink {
 public:
  virtual ~SpanSink() = default;
  virtual void Consume(const std::vector<Span>& spans) = 0;
};

struct TracerOptions {
  double sample_ratio = 1.0;                                         // 0..1; clamped
  std::chrono::nanoseconds slow_threshold{std::chrono::seconds(1)};  // always kept at or above
  size_t max_spans_per_trace = 256;  // bound on a trace's pending spans
};

struct SpanContext {
  TraceId trace_id{};
  SpanId span_id{};
  bool sampled = false;  // head decision by ratio (a trace may still be kept as error/slow)
};

class Tracer;
struct TraceState;

// A span being recorded. Ends (and is delivered) on End() or destruction, whichever is first.
// Move-only. A default-constructed ScopedSpan is inert: every call is a no-op.
class ScopedSpan {
 public:
  ScopedSpan() = default;
  ScopedSpan(ScopedSpan&&) noexcept;
  ScopedSpan& operator=(ScopedSpan&&) noexcept;
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;
  ~ScopedSpan();

  template <typename T>
  ScopedSpan& SetAttribute(std::string_view key, T&& value) {
    if (active()) span_.attributes.Set(key, std::forward<T>(value));
    return *this;
  }
  ScopedSpan& AddEvent(std::string name, Attributes attributes = {},
                       std::optional<SpanTime> at = std::nullopt);
  // Adds a link (bounded: at most kMaxLinks per span; later ones are dropped).
  ScopedSpan& AddLink(SpanLink link);
  ScopedSpan& SetOk();
  // Status ERROR with `message`; error.type is `error_type`, or "_OTHER" when it is empty.
  ScopedSpan& SetError(std::string_view error_type, std::string_view message);
  // Status ERROR for a failed database call, per the database semconv: `sqlstate` (when the
  // server sent one) becomes db.response.status_code and error.type; without one error.type is
  // `kind`. The readable `kind` (e.g. "admin_shutdown") goes to pgvigil.error.kind. Only for
  // CLIENT spans of a database call: an INTERNAL span uses SetError.
  ScopedSpan& SetDbError(std::string_view sqlstate, std::string_view message,
                         std::string_view kind);

  static constexpr size_t kMaxLinks = 8;
  // Ends the span now, or at `end` (for observed spans whose end is known). Idempotent.
  void End(std::optional<SpanTime> end = std::nullopt);

  bool active() const { return state_ != nullptr && !ended_; }
  SpanContext context() const;
  // W3C traceparent of this span, for the SQL comment of the statement it covers.
  std::string Traceparent() const;
  const Span& span() const { return span_; }  // as recorded so far

 private:
  friend class Tracer;
  Span span_;
  std::shared_ptr<TraceState> state_;
  bool root_ = false;
  bool sampled_ = false;
  bool ended_ = false;
  bool explicit_start_ = false;
  std::chrono::steady_clock::time_point steady_start_;
};

class Tracer {
 public:
  Tracer(TracerOptions options, std::vector<SpanSink*> sinks, TracingMetrics* metrics = nullptr);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Starts a root span (parent == nullptr or inactive) or a child of `parent`. `start` defaults
  // to now; pass it for spans that describe something observed after the fact.
  ScopedSpan StartSpan(std::string name, SpanKind kind, const ScopedSpan* parent = nullptr,
                       std::optional<SpanTime> start = std::nullopt);

  const TracerOptions& options() const { return options_; }

 private:
  friend class ScopedSpan;
  friend struct TraceState;
  void Deliver(const std::vector<Span>& spans);
  void CountSampledOut(size_t n);
  void CountTooLarge(size_t n);
  bool Interesting(const Span& s) const;

  TracerOptions options_;
  std::vector<SpanSink*> sinks_;
  TracingMetrics* metrics_;
};

// --- Database client spans (OpenTelemetry semantic conventions 1.33, PostgreSQL) ---

struct DbCallInfo {
  std::string db_namespace{};    // database name -> db.namespace
  std::string operation{};       // "SELECT", "connect", ... -> db.operation.name
  std::string query_text{};      // already obfuscated; never raw literals -> db.query.text
  std::string server_address{};  // host -> server.address
  int server_port = 5432;        // -> server.port
};

// Span name per semconv: "{operation} {db_namespace}", or whichever of the two is set, or
// "postgresql". Sets db.system.name=postgresql and the attributes above (empty ones omitted).
std::string DbSpanName(const DbCallInfo& info);
ScopedSpan StartDbClientSpan(Tracer& tracer, const DbCallInfo& info,
                             const ScopedSpan* parent = nullptr,
                             std::optional<SpanTime> start = std::nullopt);

}  // namespace pgvigil
