#include "sampling/statement_rows.hpp"

#include "util/utf8.hpp"

namespace pgvigil {

std::vector<StatementRow> ParseStatementRows(const QueryResult& q) {
  std::vector<StatementRow> out;
  out.reserve(static_cast<std::size_t>(q.Rows()));
  for (int i = 0; i < q.Rows(); ++i) {
    auto userid = q.Int(i, 0), dbid = q.Int(i, 1), queryid = q.Int(i, 2), toplevel = q.Int(i, 3),
         calls = q.Int(i, 4), nrows = q.Int(i, 6), hit = q.Int(i, 7), read = q.Int(i, 8),
         temp_read = q.Int(i, 9), temp_written = q.Int(i, 10);
    auto total = q.Double(i, 5), read_ms = q.Double(i, 11);
    if (!userid || !dbid || !queryid || !toplevel || !calls || !nrows || !hit || !read ||
        !temp_read || !temp_written || !total || !read_ms) {
      continue;  // unparsable row: skipping it only costs one statement a baseline
    }
    StatementRow row;
    row.key = StatementKey{*userid, *dbid, *queryid, *toplevel != 0};
    row.counters =
        StatementCounters{*calls, *total, *nrows, *hit, *read, *temp_read, *temp_written, *read_ms};
    row.stats_since = q.Text(i, 12);
    row.datname = SanitizeUtf8(q.Text(i, 14));
    row.usename = SanitizeUtf8(q.Text(i, 15));
    out.push_back(std::move(row));
  }
  return out;
}

}  // namespace pgvigil
