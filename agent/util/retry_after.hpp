#pragma once
// Retry-After (RFC 9110 §10.2.3) as both the Neon API client and the OTLP exporter read it:
// delta-seconds ("7") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`; a date
// in the past means 0). nullopt for anything else (negative, empty, garbage). Pure, thread-safe.
#include <optional>
#include <string_view>

#include "util/time.hpp"

namespace pgvigil {

std::optional<Millis> ParseRetryAfter(std::string_view value, SystemTime now);

}  // namespace pgvigil
