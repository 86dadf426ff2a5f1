#pragma once
// DbStatsCollector: database statistics under postgres_exporter's metric names and labels, so
// dashboards and alerts written for it (Grafana 9628, postgres-mixin) keep working. Run by the
// scheduler on its own timer (interval(), default 30s; never per scrape, and the scheduler skips
// it while the database is `idle` so a Neon compute may sleep). Each collector is one bounded,
// read-only statement tagged /* pgvigil */, pooler-safe (no SET, no PREPARE, no temp objects).
//
// Collectors (name = `collector` label of pgvigil_collector_*, see telemetry/collector_metrics):
//   static         pg_static{version,short_version} = 1
//   postmaster     pg_postmaster_start_time_seconds
//   stat_database  pg_stat_database_{numbackends,xact_commit,xact_rollback,blks_read,blks_hit,
//                  tup_returned,tup_fetched,tup_inserted,tup_updated,tup_deleted,conflicts,
//                  temp_files,temp_bytes,deadlocks,blk_read_time,blk_write_time}{datid,datname}
//                  All typed gauge: postgres_exporter types the cumulative ones counter, but
//                  without a _total suffix that fails `promtool check metrics`; PromQL's rate()
//                  does not look at the type, so queries written for postgres_exporter still work.
//   stat_activity  pg_stat_activity_count{datname,state},
//                  pg_stat_activity_max_tx_duration{datname,state} (seconds)
//   locks          pg_locks_count{datname,mode}
//   database       pg_database_size_bytes{datname}
//   settings       pg_settings_<name>[_bytes|_seconds] for the settings dashboards use; units are
//                  converted to bytes/seconds as postgres_exporter does (-1 left as is)
//   stat_bgwriter  pg_stat_bgwriter_*_total counters (PG < 17: checkpoint columns included;
//                  PG >= 17: bgwriter columns only, plus pg_stat_checkpointer_*_total)
//   replication    pg_replication_is_replica, pg_replication_lag_seconds
//   neon_lfc       Neon's local file cache, from the neon extension's neon_stat_file_cache view
//                  (found by search_path, else in any schema; absent = success, no error):
//                  pgvigil_neon_lfc_available (0/1), pgvigil_neon_lfc_{hits,misses,writes}_total
//                  (counters that keep accumulating across compute restarts: a decrease of the
//                  server value is a reset and re-baselines), pgvigil_neon_lfc_used_chunks,
//                  pgvigil_neon_lfc_hit_ratio (0..1, since the compute started).
//                  Connection use against max_connections needs no extra query:
//                  sum(pg_stat_activity_count) / pg_settings_max_connections.
// A collector that fails (permission, missing view, timeout) is counted and the others still run.
// No stale series (as postgres_exporter, which exports nothing it could not read): a collector
// that fails removes its series at once, and Forget() removes every collector's (the scheduler
// calls it when a probe fails, the database is down or asleep, or this sidecar is not the stats
// leader, fleet/stats_leader.hpp). They come back on the collector's next successful run; a
// mirrored counter then starts a new series at the server's value (Prometheus reads the gap as a
// reset when the value went down, as continuous when it did not: both right). Not removed: the
// pgvigil_collector_* series (pgvigil's own, the age of the last success stays visible) and the
// pgvigil_neon_lfc_*_total counters (pgvigil accumulates them across compute restarts; they just
// stop growing).
// Series whose labels vanished (a dropped database) are removed on the next successful run.
// Mirrored server counters follow resets (stats reset, Neon compute restart) by recreating the
// series, which Prometheus reads as a counter reset.
//
// Thread-safety: RunAll is called by one thread (the scheduler) at a time; StatusJson may be
// called from any thread. The registry must outlive the collector.
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "db/connection.hpp"

namespace pgvigil {

struct DbStatsOptions {
  std::chrono::milliseconds interval{30000};      // how often the scheduler runs RunAll
  std::chrono::milliseconds query_timeout{5000};  // bound of each collector's statement
};

struct DbStatsRunStatus {
  int succeeded = 0;
  int failed = 0;
  int skipped = 0;               // not run: the deadline passed or the connection was lost
  bool connection_lost = false;  // the caller must discard the connection
  bool ok() const { return failed == 0 && skipped == 0; }
};

class DbStatsCollector {
 public:
  explicit DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options = {});
  ~DbStatsCollector();
  DbStatsCollector(const DbStatsCollector&) = delete;
  DbStatsCollector& operator=(const DbStatsCollector&) = delete;

  // Runs every collector on `conn`, one statement each, each bounded by
  // min(deadline, now + query_timeout). Stops early if the connection breaks (a missed deadline
  // or a lost socket); the rest are reported as skipped.
  DbStatsRunStatus RunAll(Connection& conn, SteadyTime deadline);
  // Same, with the whole run bounded by one interval.
  DbStatsRunStatus RunAll(Connection& conn);

  // Drops every pg_* series this collector exports (database down/asleep, or not the stats
  // leader); the next successful run brings them back. Cheap, idempotent, no database access.
  void Forget();

  // Whether a run is due at `now` (never run, or interval elapsed since the last start).
  bool Due(SteadyTime now) const;
  std::chrono::milliseconds interval() const { return options_.interval; }

  // For /health: {"interval_seconds", "last_run", "series_exported", "collectors": {name: {"ok",
  // "last_success", "duration_seconds", "errors", "error"?}}}. Error texts come scrubbed from
  // DbError.
  nlohmann::json StatusJson() const;

 private:
  struct State;
  DbStatsOptions options_;
  std::unique_ptr<State> state_;
};

// Pure helpers, exposed for tests. Thread-safe.
// "PostgreSQL 15.4 (Debian ...) on ..." -> "15.4.0" (postgres_exporter's short_version); "" if
// the text holds no version.
std::string ShortPgVersion(const std::string& version);
// A pg_settings unit -> (metric suffix "bytes"/"seconds"/"", factor to base units); nullopt for a
// unit postgres_exporter does not know either.
std::optional<std::pair<std::string, double>> NormalisePgSettingUnit(const std::string& unit);

}  // namespace pgvigil
