// stat_activity: pg_stat_activity_count{datname,state} and
// pg_stat_activity_max_tx_duration{datname,state} (seconds), every state of every database.
#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

class StatActivityCollector final : public OneStatementCollector {
 public:
  explicit StatActivityCollector(prometheus::Registry& r)
      : count_(r, "pg_stat_activity_count", "number of connections in this state"),
        max_tx_(r, "pg_stat_activity_max_tx_duration",
                "max duration in seconds any active transaction has been running") {}
  const char* name() const override { return "stat_activity"; }
  void Forget() override {
    count_.Clear();
    max_tx_.Clear();
  }

 protected:
  std::string Sql(const Connection&) const override {
    static const std::string sql =
        "/* pgvigil */ SELECT d.datname, s.state, COALESCE(a.count, 0) AS count, "
        "COALESCE(a.max_tx_duration, 0) AS max_tx_duration "
        "FROM (VALUES ('active'), ('idle'), ('idle in transaction'), "
        "('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) "
        "AS s(state) "
        "CROSS JOIN (SELECT datname FROM pg_database ORDER BY datname LIMIT " +
        std::to_string(kMaxDatabases) +
        ") AS d "
        "LEFT JOIN (SELECT datname, state, count(*) AS count, "
        "max(extract(epoch FROM now() - xact_start))::float8 AS max_tx_duration "
        "FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname, state) AS a "
        "ON a.state = s.state AND a.datname = d.datname";
    return sql;
  }
  void Read(const RowSet& r) override {
    for (int row = 0; row < r.Rows(); ++row) {
      const prometheus::Labels labels{{"datname", r.Text(row, 0)}, {"state", r.Text(row, 1)}};
      count_.Set(labels, CellNumber(r, row, 2));
      max_tx_.Set(labels, CellNumber(r, row, 3));
    }
    count_.Sweep();
    max_tx_.Sweep();
  }

 private:
  SweptGauges count_, max_tx_;
};

}  // namespace

std::unique_ptr<Collector> MakeStatActivityCollector(prometheus::Registry& r) {
  return std::make_unique<StatActivityCollector>(r);
}

}  // namespace pgvigil
