#include "tracing/tracer.hpp"

#include <algorithm>
#include <mutex>

namespace pgvigil {

// Shared by the spans of one trace until the root ends and decides.
struct TraceState {
  Tracer* tracer = nullptr;
  bool sampled = false;
  std::mutex mu;
  bool root_ended = false;  // guarded by mu
  bool keep = false;        // guarded by mu; valid once root_ended
  std::vector<Span> pending;
};

namespace {

// OTel TraceIdRatioBased: the low 8 bytes of the id, as a 63-bit number, under ratio * 2^63.
bool SampledByRatio(const TraceId& id, double ratio) {
  if (ratio >= 1.0) return true;
  if (!(ratio > 0.0)) return false;
  std::uint64_t x = 0;
  for (size_t i = 8; i < 16; ++i) x = (x << 8) | id[i];
  x >>= 1;
  auto bound = static_cast<std::uint64_t>(ratio * static_cast<double>(std::uint64_t{1} << 63));
  return x < bound;
}

}  // namespace

ScopedSpan::ScopedSpan(ScopedSpan&& o) noexcept
    : span_(std::move(o.span_)),
      state_(std::move(o.state_)),
      root_(o.root_),
      sampled_(o.sampled_),
      ended_(o.ended_),
      explicit_start_(o.explicit_start_),
      steady_start_(o.steady_start_) {
  o.ended_ = true;
}

ScopedSpan& ScopedSpan::operator=(ScopedSpan&& o) noexcept {
  if (this != &o) {
    End();
    span_ = std::move(o.span_);
    state_ = std::move(o.state_);
    root_ = o.root_;
    sampled_ = o.sampled_;
    ended_ = o.ended_;
    explicit_start_ = o.explicit_start_;
    steady_start_ = o.steady_start_;
    o.ended_ = true;
  }
  return *this;
}

ScopedSpan::~ScopedSpan() { End(); }

ScopedSpan& ScopedSpan::AddEvent(std::string name, Attributes attributes,
                                 std::optional<SpanTime> at) {
  if (!active()) return *this;
  if (span_.events.size() >= 32) return *this;  // bounded; events are rare annotations
  span_.events.push_back(SpanEvent{std::move(name), at.value_or(std::chrono::system_clock::now()),
                                   std::move(attributes)});
  return *this;
}

ScopedSpan& ScopedSpan::SetOk() {
  if (active() && span_.status.code != StatusCode::kError) span_.status = {StatusCode::kOk, {}};
  return *this;
}

ScopedSpan& ScopedSpan::AddLink(SpanLink link) {
  if (active() && span_.links.size() < kMaxLinks) span_.links.push_back(std::move(link));
  return *this;
}

ScopedSpan& ScopedSpan::SetError(std::string_view error_type, std::string_view message) {
  if (!active()) return *this;
  span_.status = {StatusCode::kError, std::string(message)};
  span_.attributes.Set("error.type", error_type.empty() ? std::string_view("_OTHER") : error_type);
  return *this;
}

ScopedSpan& ScopedSpan::SetDbError(std::string_view sqlstate, std::string_view message,
                                   std::string_view kind) {
  if (!active()) return *this;
  SetError(sqlstate.empty() ? kind : sqlstate, message);
  if (!sqlstate.empty()) span_.attributes.Set("db.response.status_code", sqlstate);
  if (!kind.empty()) span_.attributes.Set("pgvigil.error.kind", kind);
  return *this;
}

SpanContext ScopedSpan::context() const {
  return SpanContext{span_.trace_id, span_.span_id, sampled_};
}

std::string ScopedSpan::Traceparent() const {
  return FormatTraceparent(span_.trace_id, span_.span_id, sampled_);
}

void ScopedSpan::End(std::optional<SpanTime> end) {
  if (!active()) return;
  ended_ = true;
  if (end) {
    span_.end = *end;
  } else if (explicit_start_) {
    span_.end = std::chrono::system_clock::now();
  } else {
    // Measure with the monotonic clock so a wall-clock step cannot produce a negative duration.
    span_.end = span_.start + std::chrono::duration_cast<SpanTime::duration>(
                                  std::chrono::steady_clock::now() - steady_start_);
  }
  if (span_.end < span_.start) span_.end = span_.start;

  TraceState& st = *state_;
  Tracer& tracer = *st.tracer;
  std::vector<Span> deliver;
  size_t discarded = 0;
  size_t too_large = 0;
  {
    std::lock_guard lock(st.mu);
    if (root_) {
      st.root_ended = true;
      st.pending.push_back(std::move(span_));
      st.keep = st.sampled || std::any_of(st.pending.begin(), st.pending.end(),
                                          [&](const Span& s) { return tracer.Interesting(s); });
      if (st.keep) {
        deliver = std::move(st.pending);
      } else {
        discarded = st.pending.size();
      }
      st.pending.clear();
      st.pending.shrink_to_fit();
    } else if (!st.root_ended) {
      if (st.pending.size() < tracer.options_.max_spans_per_trace) {
        st.pending.push_back(std::move(span_));
      } else {
        too_large = 1;
      }
    } else if (st.keep || tracer.Interesting(span_)) {
      deliver.push_back(std::move(span_));
    } else {
      discarded = 1;
    }
  }
  if (!deliver.empty()) tracer.Deliver(deliver);
  if (discarded > 0) tracer.CountSampledOut(discarded);
  if (too_large > 0) tracer.CountTooLarge(too_large);
}

Tracer::Tracer(TracerOptions options, std::vector<SpanSink*> sinks, TracingMetrics* metrics)
    : options_(options), sinks_(std::move(sinks)), metrics_(metrics) {
  options_.sample_ratio = std::clamp(options_.sample_ratio, 0.0, 1.0);
  if (options_.max_spans_per_trace == 0) options_.max_spans_per_trace = 1;
}

ScopedSpan Tracer::StartSpan(std::string name, SpanKind kind, const ScopedSpan* parent,
                             std::optional<SpanTime> start) {
  ScopedSpan s;
  s.span_.name = std::move(name);
  s.span_.kind = kind;
  s.span_.span_id = NewSpanId();
  if (parent != nullptr && parent->state_ != nullptr) {
    s.state_ = parent->state_;
    s.span_.trace_id = parent->span_.trace_id;
    s.span_.parent_span_id = parent->span_.span_id;
    s.sampled_ = parent->sampled_;
  } else {
    s.root_ = true;
    s.span_.trace_id = NewTraceId();
    s.sampled_ = SampledByRatio(s.span_.trace_id, options_.sample_ratio);
    s.state_ = std::make_shared<TraceState>();
    s.state_->tracer = this;
    s.state_->sampled = s.sampled_;
  }
  s.explicit_start_ = start.has_value();
  s.span_.start = start.value_or(std::chrono::system_clock::now());
  s.steady_start_ = std::chrono::steady_clock::now();
  return s;
}

bool Tracer::Interesting(const Span& s) const {
  return s.IsError() || s.Duration() >= options_.slow_threshold;
}

void Tracer::Deliver(const std::vector<Span>& spans) {
  if (metrics_ != nullptr) metrics_->recorded().Increment(static_cast<double>(spans.size()));
  for (SpanSink* sink : sinks_) sink->Consume(spans);
}

void Tracer::CountSampledOut(size_t n) {
  if (metrics_ != nullptr) metrics_->sampled_out().Increment(static_cast<double>(n));
}

void Tracer::CountTooLarge(size_t n) {
  if (metrics_ != nullptr) metrics_->dropped("trace_too_large").Increment(static_cast<double>(n));
}

std::string DbSpanName(const DbCallInfo& info) {
  if (!info.operation.empty() && !info.db_namespace.empty()) {
    return info.operation + " " + info.db_namespace;
  }
  if (!info.operation.empty()) return info.operation;
  if (!info.db_namespace.empty()) return info.db_namespace;
  return "postgresql";
}

ScopedSpan StartDbClientSpan(Tracer& tracer, const DbCallInfo& info, const ScopedSpan* parent,
                             std::optional<SpanTime> start) {
  ScopedSpan s = tracer.StartSpan(DbSpanName(info), SpanKind::kClient, parent, start);
  s.SetAttribute("db.system.name", "postgresql");
  if (!info.db_namespace.empty()) s.SetAttribute("db.namespace", info.db_namespace);
  if (!info.operation.empty()) s.SetAttribute("db.operation.name", info.operation);
  if (!info.query_text.empty()) s.SetAttribute("db.query.text", info.query_text);
  if (!info.server_address.empty()) s.SetAttribute("server.address", info.server_address);
  if (info.server_port > 0) s.SetAttribute("server.port", info.server_port);
  return s;
}

}  // namespace pgvigil
