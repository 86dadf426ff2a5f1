#pragma once
// Query text hygiene: everything pgvigil shows of a SQL text goes through here first.
// ObfuscateQuery replaces every literal (strings in all their spellings, dollar-quoted bodies,
// numbers, booleans in comparisons) with `?`, collapses `IN (?, ?, ...)` to `IN (?)`, strips
// comments and folds whitespace, while keeping `$n` parameters, keywords, identifiers and quoted
// identifiers. It is total: any byte sequence gives valid UTF-8 output, never a crash, and an
// unterminated string, dollar quote or comment hides everything up to the end of the text, so a
// truncated query (pg_stat_activity cuts at track_activity_query_size) cannot leak the tail of a
// secret. Plain '...' strings follow standard_conforming_strings=on (backslash is literal); one
// that holds a backslash could end elsewhere when the setting is off, so it hides the rest of
// the text like an unterminated string.
// Pure functions, thread-safe.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "util/trace_context.hpp"
#include "util/utf8.hpp"  // SanitizeUtf8

namespace pgvigil {

inline constexpr std::size_t kNoLengthLimit = static_cast<std::size_t>(-1);
inline constexpr std::string_view kTruncationMarker = "...";

// The obfuscated text, capped at `max_len` bytes (marker included) on a UTF-8 boundary.
std::string ObfuscateQuery(std::string_view text, std::size_t max_len = kNoLengthLimit);

// The W3C traceparent a sqlcommenter comment of `text` carries (the last such comment outside
// literals), or nullopt. Read from the raw text: obfuscation strips comments.
std::optional<Traceparent> QueryTraceparent(std::string_view text);

// 64-bit FNV-1a of `text` as 16 lowercase hex digits. Feed it obfuscated text so that queries
// differing only in literals share a fingerprint.
std::string QueryFingerprint(std::string_view text);

// Cuts `text` to at most `max_len` bytes on a UTF-8 boundary, ending in kTruncationMarker when
// cut (a max_len shorter than the marker gives a bare prefix). Sets *truncated when given.
std::string CapQueryLength(std::string_view text, std::size_t max_len, bool* truncated = nullptr);

// What pgvigil exposes for one query text under the configured mode.
struct QueryText {
  std::string text;         // obfuscated / raw (sanitized) / "" for QueryTextMode::kNone
  std::string fingerprint;  // always from the obfuscated form, whatever the mode
  bool truncated = false;   // text was cut to max_len
};

QueryText PrepareQueryText(std::string_view raw, QueryTextMode mode, std::size_t max_len);

// "obfuscated" | "none" | "raw".
const char* QueryTextModeName(QueryTextMode mode);

}  // namespace pgvigil
