#include "pgstats/json_rows.hpp"

#include <limits>
#include <nlohmann/json.hpp>

namespace pgvigil {

int JsonRows::Rows() const { return rows_; }

const JsonRows::Cell* JsonRows::At(int row, int col) const {
  if (row < 0 || row >= rows_ || col < 0 || col >= Columns()) return nullptr;
  return &cells_[static_cast<std::size_t>(row) * columns_.size() + static_cast<std::size_t>(col)];
}

bool JsonRows::IsNull(int row, int col) const {
  const Cell* c = At(row, col);
  return c == nullptr || c->null;
}

std::string JsonRows::Text(int row, int col) const {
  const Cell* c = At(row, col);
  if (c == nullptr || c->null) return "";
  return text_.substr(c->offset, c->size);
}

std::optional<double> JsonRows::Double(int row, int col) const {
  const Cell* c = At(row, col);
  if (c == nullptr || c->null) return std::nullopt;
  return ParsePgDouble(std::string_view(text_).substr(c->offset, c->size));
}

// Builds the parts while nlohmann's SAX parser reads the reply: no DOM, and every number keeps
// the text PostgreSQL wrote.
class BundleReplyHandler final : public nlohmann::json_sax<nlohmann::json> {
 public:
  BundleParts parts;
  std::string error;

  bool null() override { return Scalar("", true); }
  bool boolean(bool v) override { return Scalar(v ? "t" : "f", false); }
  bool number_integer(number_integer_t v) override { return Scalar(std::to_string(v), false); }
  bool number_unsigned(number_unsigned_t v) override { return Scalar(std::to_string(v), false); }
  bool number_float(number_float_t, const string_t& text) override { return Scalar(text, false); }
  bool string(string_t& v) override { return Scalar(v, false); }
  bool binary(binary_t&) override { return Fail("binary value"); }

  bool start_object(std::size_t) override {
    if (depth_ == 0 || depth_ == 2) {
      if (depth_ == 2) column_ = 0;
      ++depth_;
      return true;
    }
    return Fail(depth_ == 3 ? "nested object in a cell" : "unexpected object");
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      auto [it, inserted] = parts.try_emplace(k);
      if (!inserted) return Fail("part \"" + k + "\" twice");
      part_ = &it->second;
      return true;
    }
    // depth 3: a column of the current row.
    auto& columns = part_->columns_;
    if (part_->rows_ == 0) {
      for (const auto& c : columns) {
        if (c == k) return Fail("column \"" + k + "\" twice in part (name the columns apart)");
      }
      columns.push_back(k);
    } else if (column_ >= columns.size() || columns[column_] != k) {
      return Fail("rows with different columns");
    }
    ++column_;
    return true;
  }
  bool end_object() override {
    if (depth_ == 3) {
      if (column_ != part_->columns_.size()) return Fail("rows with different columns");
      ++part_->rows_;
    }
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ != 1) return Fail(depth_ == 3 ? "nested array in a cell" : "unexpected array");
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    if (error.empty())
      error = "malformed JSON at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

 private:
  bool Fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  // A value: a cell at depth 3; a null part (no rows) at depth 1.
  bool Scalar(const std::string& text, bool is_null) {
    if (depth_ == 1 && is_null) return true;
    if (depth_ != 3) return Fail("unexpected value outside a row");
    if (part_->text_.size() + text.size() > std::numeric_limits<std::uint32_t>::max()) {
      return Fail("reply too large");
    }
    JsonRows::Cell c;
    c.offset = static_cast<std::uint32_t>(part_->text_.size());
    c.size = static_cast<std::uint32_t>(text.size());
    c.null = is_null;
    part_->text_ += text;
    part_->cells_.push_back(c);
    return true;
  }

  int depth_ = 0;  // 0 outside, 1 in the top object, 2 in a part's array, 3 in a row
  JsonRows* part_ = nullptr;
  std::size_t column_ = 0;
};

Result<BundleParts> ParseBundleReply(std::string_view json) {
  BundleReplyHandler handler;
  const bool ok = nlohmann::json::sax_parse(json.begin(), json.end(), &handler);
  if (!ok || !handler.error.empty()) {
    return Fail("bundle reply: " + (handler.error.empty() ? "not JSON" : handler.error));
  }
  return std::move(handler.parts);
}

}  // namespace pgvigil
