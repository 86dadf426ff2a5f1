// stat_database: pg_stat_database_{numbackends,xact_commit,...,blk_write_time}{datid,datname}.
// All typed gauge: postgres_exporter types the cumulative ones counter, but without a _total
// suffix that fails `promtool check metrics`; PromQL's rate() does not look at the type.
#include <iterator>
#include <vector>

#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

const char* const kColumns[] = {"numbackends", "xact_commit",  "xact_rollback", "blks_read",
                                "blks_hit",    "tup_returned", "tup_fetched",   "tup_inserted",
                                "tup_updated", "tup_deleted",  "conflicts",     "temp_files",
                                "temp_bytes",  "deadlocks",    "blk_read_time", "blk_write_time"};

const char* const kHelp[] = {
    "Number of backends currently connected to this database.",
    "Number of transactions in this database that have been committed.",
    "Number of transactions in this database that have been rolled back.",
    "Number of disk blocks read in this database.",
    "Number of times disk blocks were found already in the buffer cache.",
    "Number of rows returned by queries in this database.",
    "Number of rows fetched by queries in this database.",
    "Number of rows inserted by queries in this database.",
    "Number of rows updated by queries in this database.",
    "Number of rows deleted by queries in this database.",
    "Number of queries canceled due to conflicts with recovery in this database.",
    "Number of temporary files created by queries in this database.",
    "Total amount of data written to temporary files by queries in this database.",
    "Number of deadlocks detected in this database.",
    "Time spent reading data file blocks by backends in this database, in milliseconds.",
    "Time spent writing data file blocks by backends in this database, in milliseconds."};

class StatDatabaseCollector final : public OneStatementCollector {
 public:
  explicit StatDatabaseCollector(prometheus::Registry& r) {
    gauges_.reserve(std::size(kColumns));
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      gauges_.emplace_back(r, std::string("pg_stat_database_") + kColumns[i], kHelp[i]);
    }
    sql_ = "/* pgvigil */ SELECT datid::text AS datid, datname";
    for (const char* c : kColumns) sql_ += std::string(", ") + c;
    sql_ += " FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY datname LIMIT " +
            std::to_string(kMaxDatabases);
  }
  const char* name() const override { return "stat_database"; }
  void Forget() override {
    for (auto& g : gauges_) g.Clear();
  }

 protected:
  std::string Sql(const Connection&) const override { return sql_; }
  void Read(const RowSet& r) override {
    for (int row = 0; row < r.Rows(); ++row) {
      const prometheus::Labels labels{{"datid", r.Text(row, 0)}, {"datname", r.Text(row, 1)}};
      for (size_t i = 0; i < gauges_.size(); ++i) {
        gauges_[i].Set(labels, CellNumber(r, row, static_cast<int>(i) + 2));
      }
    }
    for (auto& g : gauges_) g.Sweep();
  }

 private:
  std::vector<SweptGauges> gauges_;  // parallel to kColumns
  std::string sql_;
};

}  // namespace

std::unique_ptr<Collector> MakeStatDatabaseCollector(prometheus::Registry& r) {
  return std::make_unique<StatDatabaseCollector>(r);
}

}  // namespace pgvigil
