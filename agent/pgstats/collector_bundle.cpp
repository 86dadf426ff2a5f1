#include "pgstats/collector_bundle.hpp"

#include "util/utf8.hpp"

namespace pgvigil {
namespace {

std::string Literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string BundleStatement(const std::vector<BundlePart>& parts) {
  std::string sql = "/* pgvigil */ SELECT json_build_object(";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    sql += (i ? ", " : "") + Literal(parts[i].name) +
           ", (SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM (" + parts[i].sql + ") t)";
  }
  return sql + ")";
}

Result<BundleParts> ReadBundleReply(const QueryResult& result,
                                    const std::vector<BundlePart>& parts) {
  if (result.Rows() != 1 || result.Columns() != 1 || result.IsNull(0, 0)) {
    return Fail("bundle reply: not one JSON value");
  }
  // Read in place: the reply can be large (every database's rows of every part).
  const std::string_view text(PQgetvalue(result.raw(), 0, 0),
                              static_cast<std::size_t>(PQgetlength(result.raw(), 0, 0)));
  // A name from a SQL_ASCII database can carry any bytes, which JSON may not: such bytes read
  // as U+FFFD, as the exposition would show them anyway.
  auto read = IsCleanUtf8(text) ? ParseBundleReply(text) : ParseBundleReply(SanitizeUtf8(text));
  if (!read) return read;
  for (const auto& p : parts) {
    if (read->find(p.name) == read->end()) return Fail("bundle reply: no part " + p.name);
  }
  return read;
}

}  // namespace pgvigil
