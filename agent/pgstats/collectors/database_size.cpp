// database: pg_database_size_bytes{datname}. The expensive one (pg_database_size walks every
// file), so by default every 5 minutes, only for databases written to since they were last
// measured (database_size_plan.hpp; all of them every kFullPassEvery runs), in batches of
// kBatch databases so that no statement runs long. A run that nears its deadline stops between
// batches; what it did not measure is measured on the next run. Databases we may not size are
// left out rather than failing the run.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "pgstats/collector.hpp"
#include "pgstats/database_size_plan.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

constexpr int kFullPassEvery = 12;  // with the default 5 min: every database at least hourly
constexpr std::size_t kBatch = 16;

class DatabaseSizeCollector final : public Collector {
 public:
  explicit DatabaseSizeCollector(prometheus::Registry& r)
      : size_(r, "pg_database_size_bytes", "Disk space used by the database") {}
  const char* name() const override { return "database"; }
  std::chrono::milliseconds min_interval() const override { return std::chrono::minutes(5); }

  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) override {
    static const std::string activity_sql =
        "/* pgvigil */ SELECT d.oid::text, d.datname, "
        "has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER'), "
        "COALESCE(s.tup_inserted + s.tup_updated + s.tup_deleted + s.temp_bytes, 0)::float8, "
        "COALESCE(extract(epoch FROM s.stats_reset), 0)::float8 "
        "FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid "
        "ORDER BY d.datname LIMIT " +
        std::to_string(kMaxDatabases);
    std::vector<DatabaseActivity> activity;
    auto err = CollectorQuery(conn, activity_sql, {}, deadline, [&](const RowSet& r) {
      activity.reserve(static_cast<std::size_t>(r.Rows()));
      for (int row = 0; row < r.Rows(); ++row) {
        activity.push_back({r.Text(row, 0), r.Text(row, 1), r.Text(row, 2) == "t",
                            CellNumber(r, row, 3), CellNumber(r, row, 4)});
      }
    });
    if (err) return err;
    const bool full_pass = runs_ % kFullPassEvery == 0;
    ++runs_;
    std::map<std::string, const DatabaseActivity*> by_oid;
    for (const auto& a : activity) by_oid[a.oid] = &a;
    std::erase_if(known_, [&](const auto& kv) { return by_oid.count(kv.first) == 0; });

    std::chrono::steady_clock::duration slowest_batch{};
    for (const auto& batch : SizeBatches(DatabasesToSize(activity, known_, full_pass), kBatch)) {
      const auto started = std::chrono::steady_clock::now();
      // Stop between batches when the next one would likely pass the deadline.
      if (slowest_batch.count() > 0 && started + 2 * slowest_batch > deadline) break;
      std::string oids = "{";
      for (const auto& oid : batch) oids += (oids.size() > 1 ? "," : "") + oid;
      oids += "}";
      err = CollectorQuery(
          conn,
          "/* pgvigil */ SELECT oid::text, pg_database_size(oid)::float8 "
          "FROM pg_database WHERE oid = ANY($1::oid[])",
          {oids}, deadline, [&](const RowSet& r) {
            for (int row = 0; row < r.Rows(); ++row) {
              if (r.IsNull(row, 1)) continue;
              auto it = by_oid.find(r.Text(row, 0));
              if (it == by_oid.end()) continue;
              const DatabaseActivity& a = *it->second;
              known_[a.oid] = {a.datname, CellNumber(r, row, 1), a.writes, a.stats_reset};
            }
          });
      if (err) break;
      slowest_batch = std::max(slowest_batch, std::chrono::steady_clock::now() - started);
    }
    // Whatever was measured counts, even when a later batch failed.
    for (const auto& a : activity) {
      auto it = known_.find(a.oid);
      if (a.sizable && it != known_.end())
        size_.Set({{"datname", a.datname}}, it->second.size_bytes);
    }
    size_.Sweep();
    return err;
  }

  void Forget() override {
    size_.Clear();
    known_.clear();
    runs_ = 0;
  }

 private:
  SweptGauges size_;
  std::map<std::string, SizedDatabase> known_;  // by oid
  long long runs_ = 0;
};

}  // namespace

std::unique_ptr<Collector> MakeDatabaseSizeCollector(prometheus::Registry& r) {
  return std::make_unique<DatabaseSizeCollector>(r);
}

}  // namespace pgvigil
