#pragma once
// RFC 3339 timestamps in UTC ("2026-11-23T10:00:00.123Z") for logs and /health.
// Pure functions, thread-safe.
#include <chrono>
#include <string>

namespace pgvigil {

// `fraction_digits` is 0, 3 (milliseconds) or 6 (microseconds); other values mean 3.
std::string FormatRfc3339Utc(std::chrono::system_clock::time_point tp, int fraction_digits = 3);

// Seconds since the Unix epoch, with fractions (for Prometheus timestamps).
double ToUnixSeconds(std::chrono::system_clock::time_point tp);

}  // namespace pgvigil
