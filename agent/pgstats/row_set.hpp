#pragma once
// RowSet: read access to the rows of one collector's statement, whether they came as a libpq
// result of their own (ResultRows) or as the collector's part of the bundle statement (JsonRows,
// json_rows.hpp). A collector parses through it, so its parsing code is one piece of code for
// both paths. Cells read as PostgreSQL's text output would: NULL is IsNull and Text "", booleans
// "t"/"f", numbers their digits. Out-of-range cells read as NULL. Not thread-safe; the rows must
// outlive the reader.
#include <optional>
#include <string>
#include <string_view>

#include "db/connection.hpp"

namespace pgvigil {

class RowSet {
 public:
  virtual ~RowSet() = default;
  virtual int Rows() const = 0;
  virtual int Columns() const = 0;
  virtual bool IsNull(int row, int col) const = 0;
  virtual std::string Text(int row, int col) const = 0;  // "" for NULL
  // The cell as a number (PostgreSQL's float text, "NaN" and "Infinity" included); nullopt when
  // NULL or not a number.
  virtual std::optional<double> Double(int row, int col) const = 0;
};

// A statement's own libpq result.
class ResultRows final : public RowSet {
 public:
  explicit ResultRows(const QueryResult& result) : r_(result) {}
  int Rows() const override { return r_.Rows(); }
  int Columns() const override { return r_.Columns(); }
  bool IsNull(int row, int col) const override;
  std::string Text(int row, int col) const override;
  std::optional<double> Double(int row, int col) const override { return r_.Double(row, col); }

 private:
  const QueryResult& r_;
};

// PostgreSQL's text of a number -> double, as QueryResult::Double reads it.
std::optional<double> ParsePgDouble(std::string_view text);

}  // namespace pgvigil
