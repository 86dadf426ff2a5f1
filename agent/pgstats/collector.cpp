#include "pgstats/collector.hpp"

namespace pgvigil {

std::optional<DbError> CollectorQuery(Connection& conn, const std::string& sql,
                                      const std::vector<std::string>& params, SteadyTime deadline,
                                      const std::function<void(const QueryResult&)>& use) {
  auto res = conn.Exec(sql, params, deadline);
  if (!res) return res.error();
  use(*res);
  return std::nullopt;
}

}  // namespace pgvigil
