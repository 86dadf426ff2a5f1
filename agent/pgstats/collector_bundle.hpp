#pragma once
// The bundle: the statements of the cheap collectors due in one DbStatsCollector run, sent to
// the server as ONE statement, each collector's rows coming back as one part of a JSON object:
//
//   /* pgvigil */ SELECT json_build_object(
//     'locks', (SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM (<locks' SQL>) t), ...)
//
// BundleStatement builds it (at most kMaxBundleParts parts: json_build_object takes at most 100
// arguments); ReadBundleReply splits the reply into the parts (json_rows.hpp), which each
// collector's Publish reads as it reads its own result. Each part's SQL must name its columns
// apart. Pure, thread-safe.
#include <string>
#include <utility>
#include <vector>

#include "db/connection.hpp"
#include "pgstats/json_rows.hpp"
#include "util/result.hpp"

namespace pgvigil {

inline constexpr std::size_t kMaxBundleParts = 50;

struct BundlePart {
  std::string name;  // the collector's name: the part's key in the reply
  std::string sql;   // its one parameterless statement
};

std::string BundleStatement(const std::vector<BundlePart>& parts);
// The bundle statement's result (one row, one json column) -> its parts; an error text when it
// is not what BundleStatement asks for, or a part is missing. Bytes that are not UTF-8 (names
// from a SQL_ASCII database) read as U+FFFD.
Result<BundleParts> ReadBundleReply(const QueryResult& result,
                                    const std::vector<BundlePart>& parts);

}  // namespace pgvigil
