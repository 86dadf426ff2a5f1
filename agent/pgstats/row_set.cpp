#include "pgstats/row_set.hpp"

#include <cerrno>
#include <cstdlib>

namespace pgvigil {

bool ResultRows::IsNull(int row, int col) const {
  if (row < 0 || row >= r_.Rows() || col < 0 || col >= r_.Columns()) return true;
  return r_.IsNull(row, col);
}

std::string ResultRows::Text(int row, int col) const {
  if (IsNull(row, col)) return "";
  return r_.Text(row, col);
}

std::optional<double> ParsePgDouble(std::string_view text) {
  const std::string s(text);  // strtod needs a terminated string
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);  // accepts "NaN", "Infinity" as PostgreSQL prints
  if (errno == ERANGE || end == begin || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace pgvigil
