#pragma once
// RFC 3339 timestamps: written in UTC ("2026-11-23T10:00:00.123Z") for logs and /health, read
// from Neon's API and /queries?since=.
// Pure functions, thread-safe.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pgvigil {

// `fraction_digits` is 0, 3 (milliseconds) or 6 (microseconds); other values mean 3.
std::string FormatRfc3339Utc(std::chrono::system_clock::time_point tp, int fraction_digits = 3);

// "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('t' or ' ' for 'T', 'z' for 'Z'), as Neon's API
// and RFC 3339 write it; nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

// Seconds since the Unix epoch, with fractions (for Prometheus timestamps).
double ToUnixSeconds(std::chrono::system_clock::time_point tp);

}  // namespace pgvigil
