#pragma once
// "Did you mean ...?" support for config and URL errors. Pure functions, thread-safe.
#include <string>
#include <string_view>
#include <vector>

namespace pgvigil {

// Levenshtein distance, case-insensitive.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is near enough to be a plausible typo, else "".
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c".
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace pgvigil
