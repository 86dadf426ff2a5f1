#include "util/time_format.hpp"

#include <cstdio>
#include <ctime>

namespace pgvigil {

std::string FormatRfc3339Utc(std::chrono::system_clock::time_point tp, int fraction_digits) {
  using namespace std::chrono;
  if (fraction_digits != 0 && fraction_digits != 6) fraction_digits = 3;
  // floor, not truncation towards zero, so times before 1970 still format correctly.
  const auto secs = floor<seconds>(tp);
  const auto micros = duration_cast<microseconds>(tp - secs).count();
  const std::time_t t = system_clock::to_time_t(time_point_cast<system_clock::duration>(secs));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (n < 0) return {};
  if (fraction_digits == 3) {
    n += std::snprintf(buf + n, sizeof buf - n, ".%03lld", static_cast<long long>(micros / 1000));
  } else if (fraction_digits == 6) {
    n += std::snprintf(buf + n, sizeof buf - n, ".%06lld", static_cast<long long>(micros));
  }
  std::snprintf(buf + n, sizeof buf - n, "Z");
  return buf;
}

double ToUnixSeconds(std::chrono::system_clock::time_point tp) {
  return std::chrono::duration<double>(tp.time_since_epoch()).count();
}

}  // namespace pgvigil
