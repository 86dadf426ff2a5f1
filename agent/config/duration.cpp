#include "config/duration.hpp"

#include <cstdint>
#include <limits>

namespace pgvigil {
namespace {

constexpr const char* kExamples = "use e.g. \"250ms\", \"10s\", \"1m\", \"1h30m\", \"2d\"";

struct Unit {
  std::string_view name;
  int64_t ms;
};
// Largest first: components must appear in this order, each at most once ("1h30m", not "30m1h"
// or "1m1m"), which catches typos without making anything sensible unwritable.
constexpr Unit kUnits[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::optional<Millis> Fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

std::optional<Millis> ParseDuration(std::string_view text, std::string* error) {
  const std::string quoted = Quoted(text);
  if (text.empty()) return Fail(error, "empty duration; " + std::string(kExamples));
  if (text.front() == '-' || text.front() == '+') {
    return Fail(error, quoted + " has a sign; durations are positive, " + kExamples);
  }
  int64_t total = 0;
  size_t next_unit = 0;  // index into kUnits of the largest unit still allowed
  size_t i = 0;
  while (i < text.size()) {
    const size_t number_start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == number_start) {
      return Fail(error, quoted + " is not a duration; " + kExamples);
    }
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
      return Fail(error, quoted +
                             " has a fraction; write it in a smaller unit (\"1500ms\" rather than "
                             "\"1.5s\")");
    }
    int64_t number = 0;
    for (size_t k = number_start; k < i; ++k) {
      if (__builtin_mul_overflow(number, int64_t{10}, &number) ||
          __builtin_add_overflow(number, int64_t{text[k] - '0'}, &number)) {
        return Fail(error, quoted + " is too large");
      }
    }
    const size_t unit_start = i;
    while (i < text.size() && IsAlpha(text[i])) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit.empty()) {
      if (i == text.size() && number_start == 0) {
        return Fail(error, quoted + " has no unit; write e.g. \"" + std::string(text) +
                               "s\" or \"" + std::string(text) + "ms\"");
      }
      return Fail(error, quoted + " is not a duration; " + kExamples);
    }
    size_t u = 0;
    while (u < std::size(kUnits) && kUnits[u].name != unit) ++u;
    if (u == std::size(kUnits)) {
      return Fail(error, quoted + " has an unknown unit \"" + std::string(unit) +
                             "\"; units are ms, s, m, h, d (" + kExamples + ")");
    }
    if (u < next_unit) {
      return Fail(error, quoted +
                             " repeats or misorders units; write larger units first, each "
                             "once, e.g. \"1h30m\"");
    }
    next_unit = u + 1;
    int64_t part = 0;
    if (__builtin_mul_overflow(number, kUnits[u].ms, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return Fail(error, quoted + " is too large");
    }
  }
  return Millis(total);
}

std::string FormatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 0) {
    if (ms == std::numeric_limits<int64_t>::min()) return std::to_string(ms) + "ms";
    return "-" + FormatDuration(Millis(-ms));
  }
  // Sub-second values read best as a single millisecond count ("1500ms", not "1s500ms").
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  std::string out;
  for (const Unit& unit : kUnits) {
    if (unit.ms == 1) break;
    if (ms >= unit.ms) {
      out += std::to_string(ms / unit.ms);
      out += unit.name;
      ms %= unit.ms;
    }
  }
  return out;
}

}  // namespace pgvigil
