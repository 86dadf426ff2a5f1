#pragma once
// Span: one finished OpenTelemetry span as pgvigil records it, plus the pure helpers around it:
// random trace/span ids, hex, W3C traceparent and sqlcommenter formatting.
// Span is a plain value. The id functions are thread-safe (a per-thread buffer filled from the
// kernel CSPRNG via getrandom(2)); everything else here is pure.
#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgvigil {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;
using SpanTime = std::chrono::system_clock::time_point;  // nanosecond resolution on Linux

// Integer values are the OTLP protobuf enum values; the JSON encoding writes them as integers.
enum class SpanKind : int {
  kUnspecified = 0,
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};

enum class StatusCode : int { kUnset = 0, kOk = 1, kError = 2 };

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
  bool operator==(const Attribute&) const = default;
};

// An ordered attribute list with set-or-replace semantics. The overloads exist so that a string
// literal never silently becomes a bool and every integer type becomes int64.
class Attributes {
 public:
  void Set(std::string_view key, std::string_view value) { Put(key, std::string(value)); }
  void Set(std::string_view key, const char* value) { Put(key, std::string(value)); }
  void Set(std::string_view key, bool value) { Put(key, value); }
  void Set(std::string_view key, double value) { Put(key, value); }
  template <std::integral T>
  requires(!std::same_as<T, bool>) void Set(std::string_view key, T value) {
    Put(key, static_cast<std::int64_t>(value));
  }

  const AttributeValue* Find(std::string_view key) const;
  const std::vector<Attribute>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }

 private:
  void Put(std::string_view key, AttributeValue value);
  std::vector<Attribute> items_;
};

struct SpanStatus {
  StatusCode code = StatusCode::kUnset;
  std::string message;  // only meaningful with kError
};

struct SpanEvent {
  std::string name;
  SpanTime time;
  Attributes attributes;
};

// A link to a span of another trace, e.g. the trace an observed query's client started.
struct SpanLink {
  TraceId trace_id{};
  SpanId span_id{};
  std::uint8_t trace_flags = 0;  // W3C flags (bit 0: sampled)
  bool remote = true;            // the linked context came from outside this process
  Attributes attributes;
};

struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  std::optional<SpanId> parent_span_id;  // nullopt for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  SpanTime start;
  SpanTime end;
  Attributes attributes;
  SpanStatus status;
  std::vector<SpanEvent> events;
  std::vector<SpanLink> links;

  std::chrono::nanoseconds Duration() const { return end - start; }
  bool IsError() const { return status.code == StatusCode::kError; }
};

// Fresh random ids, never all-zero (an all-zero id is invalid in W3C and OTLP).
TraceId NewTraceId();
SpanId NewSpanId();
// Fills `out` with random bytes from the kernel CSPRNG (per-thread buffered getrandom(2),
// std::random_device as a fallback).
void RandomBytes(std::uint8_t* out, size_t n);
// A random (version 4) UUID in its 36-character lowercase text form.
std::string NewUuid();

// Lowercase hex, two characters per byte.
std::string ToHex(const std::uint8_t* data, size_t n);
inline std::string ToHex(const TraceId& id) { return ToHex(id.data(), id.size()); }
inline std::string ToHex(const SpanId& id) { return ToHex(id.data(), id.size()); }

// Nanoseconds since the Unix epoch.
std::uint64_t UnixNanos(SpanTime t);

// W3C trace context: "00-<32 hex trace id>-<16 hex parent id>-<01|00>".
std::string FormatTraceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled);

// sqlcommenter style: appends "/*traceparent='...'*/" to `sql`, before a trailing ';' if any,
// so the statement pgvigil sends can be matched in pg_stat_activity and server logs.
// `traceparent` must be a value from FormatTraceparent (it is not escaped).
std::string SqlCommenter(std::string_view sql, std::string_view traceparent);

}  // namespace pgvigil
