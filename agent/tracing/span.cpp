#include "tracing/span.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace pgvigil {

const AttributeValue* Attributes::Find(std::string_view key) const {
  for (const auto& a : items_) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

void Attributes::Put(std::string_view key, AttributeValue value) {
  for (auto& a : items_) {
    if (a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  items_.push_back(Attribute{std::string(key), std::move(value)});
}

namespace {

// Ids are drawn a few dozen bytes at a time; buffering keeps it to one syscall per ~10 spans.
struct RandomPool {
  std::array<std::uint8_t, 256> buf{};
  size_t pos = buf.size();

  void Refill() {
    size_t filled = 0;
    while (filled < buf.size()) {
      ssize_t n = getrandom(buf.data() + filled, buf.size() - filled, 0);
      if (n > 0) {
        filled += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // getrandom unavailable (very old kernel or seccomp): random_device reads the same pool.
      std::random_device rd;
      while (filled < buf.size()) {
        unsigned int v = rd();
        size_t take = std::min(sizeof v, buf.size() - filled);
        std::memcpy(buf.data() + filled, &v, take);
        filled += take;
      }
    }
    pos = 0;
  }

  void Take(std::uint8_t* out, size_t n) {
    while (n > 0) {
      if (pos == buf.size()) Refill();
      size_t take = std::min(n, buf.size() - pos);
      std::memcpy(out, buf.data() + pos, take);
      // Do not keep handed-out bytes around.
      std::memset(buf.data() + pos, 0, take);
      pos += take;
      out += take;
      n -= take;
    }
  }
};

thread_local RandomPool t_pool;

template <size_t N>
std::array<std::uint8_t, N> NonZeroRandom() {
  std::array<std::uint8_t, N> id{};
  for (;;) {
    RandomBytes(id.data(), id.size());
    for (auto b : id) {
      if (b != 0) return id;
    }
  }
}

}  // namespace

void RandomBytes(std::uint8_t* out, size_t n) { t_pool.Take(out, n); }

TraceId NewTraceId() { return NonZeroRandom<16>(); }
SpanId NewSpanId() { return NonZeroRandom<8>(); }

std::string NewUuid() {
  std::array<std::uint8_t, 16> b{};
  RandomBytes(b.data(), b.size());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = ToHex(b.data(), b.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

std::string ToHex(const std::uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0f]);
  }
  return out;
}

std::uint64_t UnixNanos(SpanTime t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
}

std::string FormatTraceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled) {
  return "00-" + ToHex(trace_id) + "-" + ToHex(span_id) + (sampled ? "-01" : "-00");
}

std::string SqlCommenter(std::string_view sql, std::string_view traceparent) {
  // Keep the statement's own terminator last: "SELECT 1 /*...*/;" rather than a comment after it.
  size_t end = sql.size();
  while (end > 0 && (sql[end - 1] == ' ' || sql[end - 1] == '\n' || sql[end - 1] == '\t' ||
                     sql[end - 1] == '\r')) {
    --end;
  }
  bool semicolon = end > 0 && sql[end - 1] == ';';
  std::string_view body = sql.substr(0, semicolon ? end - 1 : end);
  while (!body.empty() && (body.back() == ' ' || body.back() == '\n' || body.back() == '\t' ||
                           body.back() == '\r')) {
    body.remove_suffix(1);
  }
  std::string out(body);
  // A trailing "-- comment" would swallow ours; a newline ends it (and is harmless otherwise).
  size_t line_start = body.rfind('\n');
  std::string_view last_line = body.substr(line_start == std::string_view::npos ? 0 : line_start);
  out += last_line.find("--") != std::string_view::npos ? "\n" : " ";
  out += "/*traceparent='";
  out += traceparent;
  out += "'*/";
  if (semicolon) out += ';';
  return out;
}

}  // namespace pgvigil
