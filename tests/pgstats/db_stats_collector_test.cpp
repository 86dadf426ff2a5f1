// DbStatsCollector against a real PostgreSQL 15 from the harness [live], plus its pure helpers
// and the shared CollectorMetrics.
#include "pgstats/db_stats_collector.hpp"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <string>

#include "pgstats/live_connection.hpp"
#include "support/agent_process.hpp"
#include "support/pg_server.hpp"
#include "telemetry/collector_metrics.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::MetricValue;
using test::PgServer;

std::string Text(const prometheus::Registry& r) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, r.Collect());
  return out.str();
}

double Value(const std::string& text, const std::string& series) {
  auto v = MetricValue(text, series);
  INFO("series " << series);
  REQUIRE(v.has_value());
  return *v;
}

TEST_CASE("ShortPgVersion parses version() like postgres_exporter", "[pgstats]") {
  CHECK(ShortPgVersion("PostgreSQL 15.4 (Debian 15.4-1) on x86_64-pc-linux-gnu") == "15.4.0");
  CHECK(ShortPgVersion("PostgreSQL 9.6.24 on x86_64") == "9.6.24");
  CHECK(ShortPgVersion("PostgreSQL 17beta1 on x86_64") == "17.0.0");
  CHECK(ShortPgVersion("PostgreSQL 16.1") == "16.1.0");
  CHECK(ShortPgVersion("garbage").empty());
  CHECK(ShortPgVersion("").empty());
}

TEST_CASE("NormalisePgSettingUnit converts to base units", "[pgstats]") {
  CHECK(NormalisePgSettingUnit("")->first.empty());
  CHECK(NormalisePgSettingUnit("8kB")->first == "bytes");
  CHECK(NormalisePgSettingUnit("8kB")->second == 8192);
  CHECK(NormalisePgSettingUnit("kB")->second == 1024);
  CHECK(NormalisePgSettingUnit("MB")->second == 1048576);
  CHECK(NormalisePgSettingUnit("ms")->first == "seconds");
  CHECK(NormalisePgSettingUnit("ms")->second == Approx(0.001));
  CHECK(NormalisePgSettingUnit("min")->second == 60);
  CHECK_FALSE(NormalisePgSettingUnit("furlongs").has_value());
}

TEST_CASE("CollectorMetrics instances share one family per name", "[pgstats]") {
  prometheus::Registry registry;
  CollectorMetrics a(registry, "statements");
  CollectorMetrics b(registry, "activity");
  CollectorMetrics a2(registry, "statements");
  a.RecordFailure(0.5s);
  a2.RecordFailure(0.25s);
  b.RecordSuccess(0.1s, std::chrono::system_clock::time_point(std::chrono::seconds(1000)));
  const std::string text = Text(registry);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="statements"})") == 2);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="activity"})") == 0);
  CHECK(Value(text, R"(pgvigil_collector_duration_seconds{collector="statements"})") == 0.25);
  CHECK(Value(text, R"(pgvigil_collector_last_success_timestamp_seconds{collector="activity"})") ==
        1000);
  CHECK(Value(text,
              R"(pgvigil_collector_last_success_timestamp_seconds{collector="statements"})") == 0);
  // One TYPE line per family: the registry merged the repeated registrations.
  size_t types = 0;
  for (auto pos = text.find("# TYPE pgvigil_collector_errors_total"); pos != std::string::npos;
       pos = text.find("# TYPE pgvigil_collector_errors_total", pos + 1))
    ++types;
  CHECK(types == 1);
}

TEST_CASE("DbStatsCollector: postgres_exporter metrics with sensible values [live]",
          "[pgstats][live]") {
  PgServer pg;
  pg.Psql("CREATE TABLE locked_table (id int); GRANT ALL ON locked_table TO vigil;");
  const std::string datid = pg.Psql("SELECT oid FROM pg_database WHERE datname = 'postgres'");

  // A second session holds a lock inside an open transaction.
  Connection holder = OpenStatsSession(pg);
  REQUIRE(holder.Exec("BEGIN", Clock::now() + 5s).has_value());
  REQUIRE(holder.Exec("LOCK TABLE locked_table IN ACCESS EXCLUSIVE MODE", Clock::now() + 5s)
              .has_value());

  // The bgwriter reports buffers_alloc on its own schedule; a fresh server may not have yet
  // (seen once in CI). Wait for the server's own figure, so the collector's is checked as > 0.
  REQUIRE(test::Eventually(
      [&] { return pg.Psql("SELECT buffers_alloc FROM pg_stat_bgwriter") != "0"; }, 10s));

  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  CHECK(collector.Due(Clock::now()));
  const DbStatsRunStatus status = collector.RunAll(conn, Clock::now() + 20s);
  CHECK(status.ok());
  CHECK(status.succeeded == 10);
  CHECK_FALSE(status.connection_lost);
  CHECK_FALSE(collector.Due(Clock::now()));
  const std::string text = Text(registry);
  INFO(text);

  const std::string db = R"({datid=")" + datid + R"(",datname="postgres"})";
  CHECK(Value(text, "pg_stat_database_numbackends" + db) >= 2);
  CHECK(Value(text, "pg_stat_database_xact_commit" + db) >= 1);
  CHECK(Value(text, "pg_stat_database_blks_hit" + db) > 0);
  for (const char* col : {"xact_rollback", "blks_read", "tup_returned", "tup_fetched",
                          "tup_inserted", "tup_updated", "tup_deleted", "conflicts", "temp_files",
                          "temp_bytes", "deadlocks", "blk_read_time", "blk_write_time"}) {
    CHECK(Value(text, std::string("pg_stat_database_") + col + db) >= 0);
  }
  CHECK(text.find("# TYPE pg_stat_database_xact_commit gauge") != std::string::npos);

  const double max_conn = std::stod(pg.Psql("SHOW max_connections"));
  CHECK(Value(text, "pg_settings_max_connections") == max_conn);
  CHECK(Value(text, "pg_settings_shared_buffers_bytes") ==
        std::stod(pg.Psql("SELECT setting::bigint * 8192 FROM pg_settings "
                          "WHERE name = 'shared_buffers'")));
  CHECK(
      Value(text, "pg_settings_work_mem_bytes") ==
      std::stod(pg.Psql("SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'work_mem'")));
  CHECK(Value(text, "pg_settings_max_wal_size_bytes") ==
        std::stod(pg.Psql("SELECT setting::bigint * 1048576 FROM pg_settings "
                          "WHERE name = 'max_wal_size'")));
  CHECK(Value(text, "pg_settings_effective_cache_size_bytes") > 0);
  CHECK(Value(text, "pg_settings_maintenance_work_mem_bytes") > 0);
  CHECK(Value(text, "pg_settings_random_page_cost") == 4);
  CHECK(Value(text, "pg_settings_seq_page_cost") == 1);
  CHECK(Value(text, "pg_settings_max_worker_processes") >= 1);
  CHECK(Value(text, "pg_settings_max_parallel_workers") >= 0);
  CHECK(Value(text, "pg_settings_superuser_reserved_connections") >= 0);

  CHECK(Value(text, R"(pg_database_size_bytes{datname="postgres"})") > 1e6);
  CHECK(Value(text, R"(pg_locks_count{datname="postgres",mode="accessexclusivelock"})") >= 1);
  CHECK(Value(text, R"(pg_locks_count{datname="template1",mode="sireadlock"})") == 0);
  CHECK(Value(text, R"(pg_stat_activity_count{datname="postgres",state="idle in transaction"})") ==
        1);
  CHECK(Value(text, R"(pg_stat_activity_count{datname="postgres",state="active"})") >= 1);
  CHECK(
      Value(
          text,
          R"(pg_stat_activity_max_tx_duration{datname="postgres",state="idle in transaction"})") >=
      0);

  const std::string version = pg.Psql("SELECT version()");
  const std::string short_version = ShortPgVersion(version);
  CHECK(short_version.rfind("15.", 0) == 0);
  CHECK(Value(text, R"(pg_static{short_version=")" + short_version + R"(",version=")" + version +
                        R"("})") == 1);
  const double start = Value(text, "pg_postmaster_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  CHECK(start <= now + 1);
  CHECK(start > now - 600);
  CHECK(Value(text, "pg_replication_is_replica") == 0);
  CHECK(Value(text, "pg_replication_lag_seconds") == 0);
  CHECK(Value(text, "pg_stat_bgwriter_checkpoints_timed_total") >= 0);
  CHECK(Value(text, "pg_stat_bgwriter_buffers_alloc_total") > 0);
  CHECK(Value(text, "pg_stat_bgwriter_stats_reset_total") > 0);

  for (const char* c : {"static", "postmaster", "stat_database", "stat_activity", "locks",
                        "database", "settings", "stat_bgwriter", "replication"}) {
    const std::string label = std::string(R"({collector=")") + c + R"("})";
    CHECK(Value(text, "pgvigil_collector_errors_total" + label) == 0);
    CHECK(Value(text, "pgvigil_collector_last_success_timestamp_seconds" + label) > now - 60);
    CHECK(Value(text, "pgvigil_collector_duration_seconds" + label) < 5);
  }

  // Every statement is tagged so DBAs can tell pgvigil's load apart.
  const std::string untagged = pg.Psql(
      "SELECT count(*) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
      "WHERE r.rolname = 'vigil' AND s.query NOT LIKE '/* pgvigil */%' "
      "AND s.query NOT IN ('BEGIN', 'LOCK TABLE locked_table IN ACCESS EXCLUSIVE MODE')");
  CHECK(untagged == "0");

  const nlohmann::json health = collector.StatusJson();
  CHECK(health["collectors"]["stat_database"]["ok"] == true);
  CHECK(health["collectors"].size() == 10);
  CHECK(health["interval_seconds"] == 30);

  // `promtool check metrics` finds nothing but the two names inherited from postgres_exporter,
  // which its own output shares (renaming them would break every dashboard built on them).
  if (test::RunCommand("command -v promtool >/dev/null") == 0) {
    char path[] = "/tmp/pgvigil-pgstats-metrics.XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(path) << text;
    std::string out;
    test::RunCommand(std::string("promtool check metrics 2>&1 < ") + path +
                         " | grep -v -E '^(pg_locks_count|pg_stat_activity_count) "
                         "non-histogram and non-summary metrics should not have \"_count\" "
                         "suffix$'",
                     &out);
    std::remove(path);
    CHECK(out == "");
  }
}

TEST_CASE("DbStatsCollector: a failing collector does not stop the others [live]",
          "[pgstats][live]") {
  PgServer pg;
  // vigil loses the right to call one function and to read one view.
  pg.Psql(
      "REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC; "
      "REVOKE SELECT ON pg_stat_bgwriter FROM PUBLIC;");
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  const DbStatsRunStatus status = collector.RunAll(conn, Clock::now() + 20s);
  CHECK(status.failed == 2);
  CHECK(status.succeeded == 8);
  CHECK(status.skipped == 0);
  CHECK_FALSE(status.connection_lost);
  CHECK_FALSE(conn.broken());
  const std::string text = Text(registry);
  INFO(text);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="postmaster"})") == 1);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="stat_bgwriter"})") == 1);
  CHECK(Value(text,
              R"(pgvigil_collector_last_success_timestamp_seconds{collector="postmaster"})") == 0);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="replication"})") == 0);
  CHECK(Value(text, "pg_settings_max_connections") > 0);
  CHECK(Value(text, R"(pg_database_size_bytes{datname="postgres"})") > 0);
  CHECK(Value(text, "pg_replication_is_replica") == 0);
  CHECK_FALSE(MetricValue(text, "pg_postmaster_start_time_seconds").has_value());

  const nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["collectors"]["postmaster"]["ok"] == false);
  const std::string error = health["collectors"]["postmaster"]["error"];
  CHECK(error.find("permission denied") != std::string::npos);
  CHECK(error.find(test::kPassword) == std::string::npos);
  CHECK(health["collectors"]["settings"]["ok"] == true);

  // Once the grant is back, the collector recovers.
  pg.Psql("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC;");
  CHECK(collector.RunAll(conn, Clock::now() + 20s).failed == 1);
  CHECK(MetricValue(Text(registry), "pg_postmaster_start_time_seconds").has_value());
  CHECK(collector.StatusJson()["collectors"]["postmaster"]["ok"] == true);
}

// No stale series: what failed or was forgotten is absent from the exposition, not repeated.
TEST_CASE("DbStatsCollector: a failing collector and Forget() remove their series [live]",
          "[pgstats][live]") {
  PgServer pg;
  // buffers_alloc is checked as > 0 below: wait for the bgwriter's first report (see above).
  REQUIRE(test::Eventually(
      [&] { return pg.Psql("SELECT buffers_alloc FROM pg_stat_bgwriter") != "0"; }, 10s));
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  std::string text = Text(registry);
  REQUIRE(MetricValue(text, "pg_postmaster_start_time_seconds").has_value());
  const double commits =
      Value(text, R"(pg_stat_database_xact_commit{datid="5",datname="postgres"})");
  CHECK(collector.StatusJson()["series_exported"] == true);

  // A collector that starts failing loses its series at once; the others keep theirs.
  pg.Psql("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;");
  CHECK(collector.RunAll(conn, Clock::now() + 20s).failed == 1);
  text = Text(registry);
  CHECK_FALSE(MetricValue(text, "pg_postmaster_start_time_seconds").has_value());
  CHECK(MetricValue(text, "pg_settings_max_connections").has_value());
  pg.Psql("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC;");

  // Forget: every pg_* series goes (families stay declared, without samples); pgvigil's own
  // collector series stay.
  collector.Forget();
  text = Text(registry);
  INFO(text);
  for (const char* series :
       {"pg_static{", "pg_stat_database_xact_commit{", "pg_stat_activity_count{", "pg_locks_count{",
        "pg_database_size_bytes{", "pg_settings_max_connections ",
        "pg_stat_bgwriter_checkpoints_req_total ", "pg_replication_is_replica ",
        "pg_replication_lag_seconds ", "pgvigil_neon_lfc_available "}) {
    INFO(series);
    CHECK(text.find(std::string("\n") + series) == std::string::npos);
  }
  CHECK(MetricValue(text, R"(pgvigil_collector_errors_total{collector="postmaster"})") == 1);
  CHECK(collector.StatusJson()["series_exported"] == false);
  collector.Forget();  // idempotent

  // The next run brings everything back; the mirrored counters start from the server's values.
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(MetricValue(text, "pg_postmaster_start_time_seconds").has_value());
  CHECK(Value(text, R"(pg_stat_database_xact_commit{datid="5",datname="postgres"})") >= commits);
  CHECK(Value(text, "pg_stat_bgwriter_buffers_alloc_total") > 0);
  CHECK(collector.StatusJson()["series_exported"] == true);
}

TEST_CASE("DbStatsCollector: vanished databases lose their series, counters follow resets [live]",
          "[pgstats][live]") {
  PgServer pg;
  pg.Psql("CREATE DATABASE scratch");
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  std::string text = Text(registry);
  CHECK(MetricValue(text, R"(pg_database_size_bytes{datname="scratch"})").has_value());
  CHECK(MetricValue(text, R"(pg_locks_count{datname="scratch",mode="sharelock"})").has_value());

  pg.Psql("DROP DATABASE scratch");
  pg.Psql("CHECKPOINT");
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK_FALSE(MetricValue(text, R"(pg_database_size_bytes{datname="scratch"})").has_value());
  CHECK_FALSE(
      MetricValue(text, R"(pg_locks_count{datname="scratch",mode="sharelock"})").has_value());
  CHECK(text.find(R"(datname="scratch")") == std::string::npos);
  const double requested = Value(text, "pg_stat_bgwriter_checkpoints_req_total");
  CHECK(requested >= 1);

  pg.Psql("SELECT pg_stat_reset_shared('bgwriter')");
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(Value(text, "pg_stat_bgwriter_checkpoints_req_total") < requested);
}

TEST_CASE("DbStatsCollector: Neon local file cache from neon_stat_file_cache, reset-aware [live]",
          "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);

  // No neon extension: the collector succeeds quietly and says the cache is not visible.
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  std::string text = Text(registry);
  INFO(text);
  CHECK(Value(text, "pgvigil_neon_lfc_available") == 0);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="neon_lfc"})") == 0);
  CHECK_FALSE(MetricValue(text, "pgvigil_neon_lfc_hit_ratio").has_value());
  CHECK(collector.StatusJson()["collectors"]["neon_lfc"]["ok"] == true);

  // The extension can't be installed here: a stand-in view with the same columns and types
  // (bigint counters, numeric percentage), in a schema off the search_path, fed from a table.
  auto set_stats = [&](int hits, int misses, int writes, int used) {
    pg.Psql("UPDATE lfc_src SET hits = " + std::to_string(hits) +
            ", misses = " + std::to_string(misses) + ", writes = " + std::to_string(writes) +
            ", used = " + std::to_string(used));
  };
  pg.Psql(
      "CREATE SCHEMA neon_ext; CREATE TABLE lfc_src (hits bigint, misses bigint, writes bigint, "
      "used bigint); INSERT INTO lfc_src VALUES (0, 0, 0, 0); "
      "CREATE VIEW neon_ext.neon_stat_file_cache AS SELECT misses AS file_cache_misses, "
      "hits AS file_cache_hits, used AS file_cache_used, writes AS file_cache_writes, "
      "CASE WHEN hits + misses = 0 THEN NULL "
      "ELSE round((hits::numeric / (hits + misses)) * 100, 2) END AS file_cache_hit_ratio "
      "FROM lfc_src; "
      "GRANT USAGE ON SCHEMA neon_ext TO vigil; GRANT SELECT ON lfc_src TO vigil; "
      "GRANT SELECT ON neon_ext.neon_stat_file_cache TO vigil;");
  set_stats(900, 100, 40, 12);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(Value(text, "pgvigil_neon_lfc_available") == 1);
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 900);
  CHECK(Value(text, "pgvigil_neon_lfc_misses_total") == 100);
  CHECK(Value(text, "pgvigil_neon_lfc_writes_total") == 40);
  CHECK(Value(text, "pgvigil_neon_lfc_used_chunks") == 12);
  CHECK(Value(text, "pgvigil_neon_lfc_hit_ratio") == Approx(0.9));
  CHECK(text.find("# TYPE pgvigil_neon_lfc_hits_total counter") != std::string::npos);

  set_stats(1500, 500, 50, 20);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 1500);
  CHECK(Value(text, "pgvigil_neon_lfc_misses_total") == 500);
  CHECK(Value(text, "pgvigil_neon_lfc_hit_ratio") == Approx(0.75));

  // The compute restarted: the view's counters start over. Ours keep going up by what the
  // new readings add (the baseline moves to the reset value).
  set_stats(30, 10, 5, 2);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 1530);
  CHECK(Value(text, "pgvigil_neon_lfc_misses_total") == 510);
  CHECK(Value(text, "pgvigil_neon_lfc_writes_total") == 55);
  CHECK(Value(text, "pgvigil_neon_lfc_used_chunks") == 2);
  CHECK(Value(text, "pgvigil_neon_lfc_hit_ratio") == Approx(0.75));
  set_stats(50, 10, 5, 2);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 1550);
  CHECK(Value(text, "pgvigil_neon_lfc_misses_total") == 510);

  // No reads yet after a reset: the ratio is NULL in the view and its series goes away.
  set_stats(0, 0, 0, 0);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Text(registry);
  CHECK_FALSE(MetricValue(text, "pgvigil_neon_lfc_hit_ratio").has_value());
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 1550);

  // A view we may not read is a real error, counted and reported.
  pg.Psql("REVOKE SELECT ON neon_ext.neon_stat_file_cache FROM vigil");
  const DbStatsRunStatus status = collector.RunAll(conn, Clock::now() + 20s);
  CHECK(status.failed == 1);
  text = Text(registry);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="neon_lfc"})") == 1);
  CHECK(Value(text, "pgvigil_neon_lfc_hits_total") == 1550);

  // The extension dropped: quiet again.
  pg.Psql("DROP VIEW neon_ext.neon_stat_file_cache");
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  CHECK(Value(Text(registry), "pgvigil_neon_lfc_available") == 0);
}

TEST_CASE(
    "DbStatsCollector: a frozen server costs one query timeout, then the rest is skipped "
    "[live]",
    "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  DbStatsOptions options;
  options.query_timeout = 300ms;
  DbStatsCollector collector(registry, options);
  Connection conn = OpenStatsSession(pg);

  // A deadline already passed: nothing runs, nothing is counted as an error.
  DbStatsRunStatus none = collector.RunAll(conn, Clock::now() - 1s);
  CHECK(none.skipped == 10);
  CHECK(none.failed == 0);
  CHECK_FALSE(conn.broken());

  pg.Freeze();
  const auto start = Clock::now();
  const DbStatsRunStatus status = collector.RunAll(conn, Clock::now() + 20s);
  const auto took = Clock::now() - start;
  pg.Thaw();
  CHECK(took < 2s);
  CHECK(status.failed == 1);
  CHECK(status.skipped == 9);
  CHECK(status.connection_lost);
  CHECK(conn.broken());
  const std::string text = Text(registry);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="static"})") == 1);
  CHECK(Value(text, R"(pgvigil_collector_errors_total{collector="settings"})") == 0);
  CHECK(collector.StatusJson()["collectors"]["static"]["error"].get<std::string>().find(
            "timeout") != std::string::npos);
}

}  // namespace
}  // namespace pgvigil
