#include "pgstats/collector.hpp"

namespace pgvigil {

std::optional<DbError> CollectorQuery(Connection& conn, const std::string& sql,
                                      const std::vector<std::string>& params, SteadyTime deadline,
                                      const std::function<void(const QueryResult&)>& use) {
  auto res = conn.Exec(sql, params, deadline);
  if (!res.ok()) return res.error.value_or(DbError{ErrorKind::kUnknown, "", "query failed"});
  use(*res.value);
  return std::nullopt;
}

}  // namespace pgvigil
