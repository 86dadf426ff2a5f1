// replication: pg_replication_is_replica, pg_replication_lag_seconds.
#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

class ReplicationCollector final : public OneStatementCollector {
 public:
  explicit ReplicationCollector(prometheus::Registry& r)
      : is_replica_(r, "pg_replication_is_replica", "Indicates if the server is a replica"),
        lag_seconds_(r, "pg_replication_lag_seconds", "Replication lag behind master in seconds") {}
  const char* name() const override { return "replication"; }
  void Forget() override {
    is_replica_.Clear();
    lag_seconds_.Clear();
  }

 protected:
  std::string Sql(const Connection&) const override {
    // As postgres_exporter: no lag on a primary or on a replica that replayed all it received.
    static const std::string sql =
        "/* pgvigil */ SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
        "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) "
        "END::float8 AS lag_seconds, CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END "
        "AS is_replica";
    return sql;
  }
  void Read(const RowSet& r) override {
    if (r.Rows() < 1) return;
    lag_seconds_.Set({}, CellNumber(r, 0, 0));
    is_replica_.Set({}, CellNumber(r, 0, 1));
    lag_seconds_.Sweep();
    is_replica_.Sweep();
  }

 private:
  SweptGauges is_replica_, lag_seconds_;
};

}  // namespace

std::unique_ptr<Collector> MakeReplicationCollector(prometheus::Registry& r) {
  return std::make_unique<ReplicationCollector>(r);
}

}  // namespace pgvigil
