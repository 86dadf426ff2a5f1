#include "tracing/span_buffer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pgvigil {

SpanBuffer::SpanBuffer(size_t capacity, TraceResource resource)
    : capacity_(std::max<size_t>(capacity, 1)), resource_(std::move(resource)) {}

void SpanBuffer::Consume(const std::vector<Span>& spans) {
  std::lock_guard lock(mu_);
  for (const auto& s : spans) {
    if (spans_.size() == capacity_) {
      spans_.pop_front();
      ++evicted_;
    }
    spans_.push_back(s);
  }
}

std::vector<Span> SpanBuffer::Query(std::optional<std::chrono::nanoseconds> min_duration,
                                    bool errors_only, size_t limit) const {
  std::vector<Span> out;
  std::lock_guard lock(mu_);
  for (auto it = spans_.rbegin(); it != spans_.rend() && out.size() < limit; ++it) {
    if (errors_only && !it->IsError()) continue;
    if (min_duration && it->Duration() < *min_duration) continue;
    out.push_back(*it);
  }
  return out;
}

size_t SpanBuffer::size() const {
  std::lock_guard lock(mu_);
  return spans_.size();
}

std::uint64_t SpanBuffer::evicted() const {
  std::lock_guard lock(mu_);
  return evicted_;
}

std::string TracesJson(const SpanBuffer& buffer,
                       std::optional<std::chrono::nanoseconds> min_duration, bool errors_only,
                       size_t limit) {
  std::vector<Span> spans =
      buffer.Query(min_duration, errors_only, std::min(limit, buffer.capacity()));
  return EncodeExportRequest(buffer.resource(), spans);
}

std::optional<std::chrono::nanoseconds> ParseSpanDuration(std::string_view text) {
  struct Unit {
    std::string_view name;
    double nanos;
  };
  // Longest names first so "ms" is not read as "m" followed by junk.
  static constexpr Unit kUnits[] = {{"ns", 1},  {"us", 1e3}, {"ms", 1e6},
                                    {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  if (text.empty()) return std::nullopt;
  double total = 0;
  while (!text.empty()) {
    size_t n = 0;
    while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
    if (n == 0) return std::nullopt;
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + n, value);
    if (ec != std::errc() || ptr != text.data() + n) return std::nullopt;
    text.remove_prefix(n);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (text.starts_with(u.name)) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return std::nullopt;
    text.remove_prefix(unit->name.size());
    total += value * unit->nanos;
  }
  if (!std::isfinite(total) || total > 1e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(total)));
}

namespace {

// Echo bad input back, but bounded.
std::string Quoted(const std::string& v) {
  return "\"" + (v.size() > 64 ? v.substr(0, 64) + "..." : v) + "\"";
}

}  // namespace

std::optional<TracesQuery> ParseTracesQuery(const std::multimap<std::string, std::string>& params,
                                            std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<TracesQuery> {
    if (error != nullptr) *error = std::move(msg);
    return std::nullopt;
  };
  TracesQuery q;
  for (const auto& [key, value] : params) {
    if (key == "min_duration") {
      auto d = ParseSpanDuration(value);
      if (!d) {
        return fail("min_duration: " + Quoted(value) +
                    " is not a duration; use e.g. \"250ms\", \"1.5s\", \"1m30s\"");
      }
      q.min_duration = *d;
    } else if (key == "error" || key == "errors") {
      if (value == "true" || value == "1" || value.empty()) {
        q.errors_only = true;
      } else if (value == "false" || value == "0") {
        q.errors_only = false;
      } else {
        return fail(key + ": " + Quoted(value) + " is not a boolean; use true or false");
      }
    } else if (key == "limit") {
      size_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n == 0) {
        return fail("limit: " + Quoted(value) + " is not a positive integer; use e.g. limit=100");
      }
      q.limit = n;
    } else {
      return fail("unknown parameter " + Quoted(key) + "; use min_duration, error or limit");
    }
  }
  return q;
}

}  // namespace pgvigil
