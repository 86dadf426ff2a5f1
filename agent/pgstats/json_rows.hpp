#pragma once
// JsonRows: one collector's part of the bundle statement's reply (collector_bundle.hpp), read
// through RowSet as if it were that collector's own result. ParseBundleReply splits the reply,
// one JSON value {"<part>": [{"<column>": value, ...}, ...], ...} (row_to_json of each row, so
// the columns come in the statement's order), into its parts by name.
//
// Cells keep PostgreSQL's text: strings as they are, numbers in their JSON text (PostgreSQL
// writes int8/numeric/float8 with their output functions, so bigint counters keep every digit),
// true/false as "t"/"f", null as NULL. It fails (an error text) on any other shape: a column name
// repeated within a row (row_to_json would keep both and one value would be lost), rows whose
// columns differ, a nested object or array as a cell, or malformed JSON.
// Pure; a parsed value is immutable and may be read from any thread.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pgstats/row_set.hpp"
#include "util/result.hpp"

namespace pgvigil {

class JsonRows final : public RowSet {
 public:
  int Rows() const override;
  int Columns() const override { return static_cast<int>(columns_.size()); }
  bool IsNull(int row, int col) const override;
  std::string Text(int row, int col) const override;
  std::optional<double> Double(int row, int col) const override;
  const std::vector<std::string>& column_names() const { return columns_; }

 private:
  friend class BundleReplyHandler;
  struct Cell {
    std::uint32_t offset = 0;  // into text_
    std::uint32_t size = 0;
    bool null = true;
  };
  const Cell* At(int row, int col) const;  // nullptr when out of range

  int rows_ = 0;
  std::vector<std::string> columns_;  // from the first row
  std::vector<Cell> cells_;           // row-major, Columns() per row
  std::string text_;                  // every cell's text, back to back
};

using BundleParts = std::map<std::string, JsonRows, std::less<>>;

Result<BundleParts> ParseBundleReply(std::string_view json);

}  // namespace pgvigil
