#include <cerrno>
#include <cstdlib>

#include "db/connection.hpp"

// QueryResult: typed reads of one libpq result (declared in connection.hpp).
namespace pgvigil {

std::string QueryResult::Text(int row, int col) const {
  if (IsNull(row, col)) return "";
  return std::string(PQgetvalue(res_.get(), row, col),
                     static_cast<size_t>(PQgetlength(res_.get(), row, col)));
}

std::string QueryResult::ColumnName(int col) const {
  const char* name = PQfname(res_.get(), col);
  return name ? name : "";
}

int QueryResult::ColumnIndex(const char* name) const {
  // Quoted so that PQfnumber does not fold case: our queries name columns exactly.
  std::string quoted = std::string("\"") + name + "\"";
  return PQfnumber(res_.get(), quoted.c_str());
}

std::optional<long long> QueryResult::Int(int row, int col) const {
  if (row < 0 || row >= Rows() || col < 0 || col >= Columns() || IsNull(row, col)) {
    return std::nullopt;
  }
  const char* text = PQgetvalue(res_.get(), row, col);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') return std::nullopt;
  return v;
}

std::optional<double> QueryResult::Double(int row, int col) const {
  if (row < 0 || row >= Rows() || col < 0 || col >= Columns() || IsNull(row, col)) {
    return std::nullopt;
  }
  const char* text = PQgetvalue(res_.get(), row, col);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);  // accepts "NaN", "Infinity" as PostgreSQL prints them
  if (errno == ERANGE || end == text || *end != '\0') return std::nullopt;
  return v;
}

}  // namespace pgvigil
