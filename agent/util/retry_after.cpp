#include "util/retry_after.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

namespace pgvigil {

std::optional<Millis> ParseRetryAfter(std::string_view value, SystemTime now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  long long secs = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), secs);
  if (ec == std::errc() && p == value.data() + value.size()) {
    // Bounded: a year is far past any cap a caller applies, and never overflows.
    if (secs < 0) return std::nullopt;
    return Millis(std::min(secs, 365LL * 24 * 3600) * 1000);
  }
  std::tm tm{};
  std::string copy(value);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<Millis>(at - now);
  return delta.count() < 0 ? Millis(0) : delta;
}

}  // namespace pgvigil
