// locks: pg_locks_count{datname,mode}, every mode of every database.
#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

class LocksCollector final : public OneStatementCollector {
 public:
  explicit LocksCollector(prometheus::Registry& r)
      : count_(r, "pg_locks_count", "Number of locks") {}
  const char* name() const override { return "locks"; }
  void Forget() override { count_.Clear(); }

 protected:
  std::string Sql(const Connection&) const override {
    static const std::string sql =
        "/* pgvigil */ SELECT d.datname, m.mode, COALESCE(l.count, 0) AS count "
        "FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), "
        "('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), "
        "('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) "
        "CROSS JOIN (SELECT oid, datname FROM pg_database ORDER BY datname LIMIT " +
        std::to_string(kMaxDatabases) +
        ") AS d "
        "LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks "
        "WHERE database IS NOT NULL GROUP BY database, lower(mode)) AS l "
        "ON l.mode = m.mode AND l.database = d.oid";
    return sql;
  }
  void Read(const RowSet& r) override {
    for (int row = 0; row < r.Rows(); ++row) {
      count_.Set({{"datname", r.Text(row, 0)}, {"mode", r.Text(row, 1)}}, CellNumber(r, row, 2));
    }
    count_.Sweep();
  }

 private:
  SweptGauges count_;
};

}  // namespace

std::unique_ptr<Collector> MakeLocksCollector(prometheus::Registry& r) {
  return std::make_unique<LocksCollector>(r);
}

}  // namespace pgvigil
