#include "sampling/statement_columns.hpp"

#include <algorithm>

namespace pgvigil {
namespace {

bool Has(const std::vector<std::string>& cols, std::string_view name) {
  return std::find(cols.begin(), cols.end(), name) != cols.end();
}

}  // namespace

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::optional<StatementColumns> DetectStatementColumns(const std::vector<std::string>& columns,
                                                       std::string schema, bool info_view,
                                                       std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<StatementColumns> {
    if (error != nullptr) *error = std::move(msg);
    return std::nullopt;
  };
  for (const char* required : {"userid", "dbid", "queryid", "calls", "rows", "shared_blks_hit",
                               "shared_blks_read", "temp_blks_read", "temp_blks_written"}) {
    if (!Has(columns, required)) {
      return fail(std::string("pg_stat_statements has no column \"") + required +
                  "\"; this extension version is not supported (run ALTER EXTENSION "
                  "pg_stat_statements UPDATE)");
    }
  }
  StatementColumns c;
  c.schema = std::move(schema);
  c.info_view = info_view;
  c.toplevel = Has(columns, "toplevel");
  if (Has(columns, "total_exec_time")) {
    c.total_time = "total_exec_time";
  } else if (Has(columns, "total_time")) {
    c.total_time = "total_time";
  } else {
    return fail(
        "pg_stat_statements has neither total_exec_time nor total_time; this extension version "
        "is not supported (run ALTER EXTENSION pg_stat_statements UPDATE)");
  }
  if (Has(columns, "shared_blk_read_time")) {
    c.read_time = "shared_blk_read_time";
  } else if (Has(columns, "blk_read_time")) {
    c.read_time = "blk_read_time";
  }
  c.stats_since = Has(columns, "stats_since");
  return c;
}

std::string ExtensionProbeSql() {
  return std::string(kSamplerTag) +
         " SELECT n.nspname, e.extversion,"
         " (SELECT string_agg(a.attname::text, ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute "
         "a"
         " WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,"
         " EXISTS (SELECT 1 FROM pg_catalog.pg_class i WHERE i.relnamespace = n.oid"
         " AND i.relname = 'pg_stat_statements_info') AS has_info"
         " FROM pg_catalog.pg_extension e"
         " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
         " LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
         " AND c.relname = 'pg_stat_statements'"
         " WHERE e.extname = 'pg_stat_statements' LIMIT 1";
}

std::string StatementsSql(const StatementColumns& cols) {
  const std::string toplevel = cols.toplevel ? "s.toplevel::int" : "1";
  const std::string read_time = cols.read_time.empty() ? "0::float8" : "s." + cols.read_time;
  const std::string since =
      cols.stats_since ? "extract(epoch FROM s.stats_since)::text" : "NULL::text";
  return std::string(kSamplerTag) + " SELECT s.userid, s.dbid, s.queryid, " + toplevel +
         " AS toplevel, s.calls, s." + cols.total_time +
         " AS total_exec_time, s.rows, s.shared_blks_hit, s.shared_blks_read, s.temp_blks_read,"
         " s.temp_blks_written, " +
         read_time + " AS blk_read_time, " + since +
         " AS stats_since, count(*) OVER () AS entries, d.datname, r.rolname"
         " FROM " +
         QuoteIdent(cols.schema) +
         ".pg_stat_statements(false) s"
         " LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid"
         " LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid"
         " WHERE s.queryid IS NOT NULL"
         " ORDER BY 6 DESC LIMIT " +
         std::to_string(kMaxStatementRows);
}

std::string StatementsInfoSql(const StatementColumns& cols) {
  std::string sql = std::string(kSamplerTag) +
                    " SELECT extract(epoch FROM pg_postmaster_start_time())::text,"
                    " current_setting('pg_stat_statements.max', true), ";
  if (cols.info_view) {
    sql +=
        "i.dealloc, extract(epoch FROM i.stats_reset)::text,"
        " extract(epoch FROM clock_timestamp())::text FROM " +
        QuoteIdent(cols.schema) + ".pg_stat_statements_info i";
  } else {
    sql += "NULL::bigint, NULL::text, extract(epoch FROM clock_timestamp())::text";
  }
  return sql;
}

std::string StatementTextsSql(const StatementColumns& cols) {
  return std::string(kSamplerTag) +
         " SELECT DISTINCT ON (s.queryid) s.queryid, left(s.query, $2::int) FROM " +
         QuoteIdent(cols.schema) +
         ".pg_stat_statements(true) s WHERE s.queryid = ANY($1::bigint[])"
         " ORDER BY s.queryid";
}

}  // namespace pgvigil
