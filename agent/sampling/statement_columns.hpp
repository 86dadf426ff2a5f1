#pragma once
// StatementColumns: which pg_stat_statements shape is installed, decided from the view's column
// list (not the server version: an old extension version can run on a new server until
// ALTER EXTENSION UPDATE), and the sampler SQL built for that shape. Every statement starts with
// the `/* pgvigil */` tag (so pgvigil can recognise and exclude its own statements), uses only
// the extended protocol with the unnamed statement (pooler-safe, no SET) and returns bounded rows.
// Pure functions, thread-safe.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgvigil {

inline constexpr std::string_view kSamplerTag = "/* pgvigil */";
inline constexpr int kMaxStatementRows = 20'000;  // upper bound on rows read per sample

struct StatementColumns {
  std::string schema = "public";  // where the extension lives
  bool toplevel = false;          // 1.9+ (PG14): key includes toplevel
  std::string total_time;         // "total_exec_time" (1.8+, PG13) or "total_time"
  std::string read_time;          // "shared_blk_read_time" (1.11, PG17), "blk_read_time" or ""
  bool stats_since = false;       // 1.11+ (PG17): per-entry reset time
  bool info_view = false;         // pg_stat_statements_info exists (1.9+, PG14)

  bool operator==(const StatementColumns&) const = default;
};

// Decides the shape from the view's column names. On failure returns nullopt and sets `error`
// to a sentence naming the missing column.
std::optional<StatementColumns> DetectStatementColumns(const std::vector<std::string>& columns,
                                                       std::string schema, bool info_view,
                                                       std::string* error = nullptr);

// Catalog probe: one row (nspname, extversion, columns (comma-separated, NULL when the view is
// missing), has_info) when the extension is installed in the current database; no row otherwise.
std::string ExtensionProbeSql();

// Counters without texts from `schema`.pg_stat_statements(false), fixed output columns:
// userid, dbid, queryid, toplevel (0/1), calls, total_exec_time (ms), rows, shared_blks_hit,
// shared_blks_read, temp_blks_read, temp_blks_written, blk_read_time (ms), stats_since (epoch
// text or NULL), entries (count of all rows), datname, usename.
std::string StatementsSql(const StatementColumns& cols);

// Server epoch and extension bookkeeping, one row: postmaster start (epoch text),
// pg_stat_statements.max (text or NULL), dealloc (NULL before 1.9), stats_reset (epoch text or
// NULL), the server's clock now (epoch text; compared with stats_since).
std::string StatementsInfoSql(const StatementColumns& cols);

// Texts for a set of queryids: $1 = '{1,2,3}' (bigint[] literal), $2 = max characters.
// Returns (queryid, query), one row per queryid.
std::string StatementTextsSql(const StatementColumns& cols);

// "schema" as a quoted identifier.
std::string QuoteIdent(std::string_view name);

}  // namespace pgvigil
