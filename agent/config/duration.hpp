#pragma once
// Durations as written in pgvigil's config: "250ms", "10s", "1m", "1h30m", "0s".
// Pure functions, thread-safe.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "util/time.hpp"  // Millis

namespace pgvigil {

// Parses a duration; units ms, s, m, h, d, combinable ("1h30m"); no sign, no bare numbers.
// On failure returns nullopt and, when `error` is set, a sentence saying what is wrong and
// what is allowed.
std::optional<Millis> ParseDuration(std::string_view text, std::string* error = nullptr);

// The shortest exact spelling: 1500ms -> "1500ms", 90000ms -> "1m30s", 0 -> "0s".
std::string FormatDuration(Millis d);

}  // namespace pgvigil
