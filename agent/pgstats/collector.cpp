#include "pgstats/collector.hpp"

namespace pgvigil {

std::optional<DbError> CollectorQuery(Connection& conn, const std::string& sql,
                                      const std::vector<std::string>& params, SteadyTime deadline,
                                      const std::function<void(const RowSet&)>& use) {
  auto res = conn.Exec(sql, params, deadline);
  if (!res) return res.error();
  use(ResultRows(*res));
  return std::nullopt;
}

std::optional<std::string> Collector::BundleSql(const Connection&) const { return std::nullopt; }

std::optional<DbError> Collector::Publish(const RowSet&, Connection&, SteadyTime) {
  return DbError{ErrorKind::kUnknown, "", std::string(name()) + " does not run in the bundle"};
}

std::optional<DbError> OneStatementCollector::Collect(Connection& conn, SteadyTime deadline) {
  return CollectorQuery(conn, Sql(conn), {}, deadline, [&](const RowSet& r) { Read(r); });
}

}  // namespace pgvigil
