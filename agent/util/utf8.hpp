#pragma once
// Text that leaves pgvigil (JSON, logs, metric labels, spans) must be valid UTF-8: database
// names, query texts and server messages need not be (SQL_ASCII databases, LATIN1 clients).
// Pure functions, thread-safe.
#include <string>
#include <string_view>

namespace pgvigil {

// Replaces invalid UTF-8 sequences with U+FFFD and control characters other than tab, newline
// and carriage return with a space.
std::string SanitizeUtf8(std::string_view text);

// True when SanitizeUtf8 would return `text` unchanged (no allocation).
bool IsCleanUtf8(std::string_view text);

}  // namespace pgvigil
