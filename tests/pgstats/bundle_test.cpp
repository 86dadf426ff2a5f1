// The bundle of the cheap collectors: the JSON row adapter and the statement (pure), and against
// a real PostgreSQL 15 [live]: the bundle publishes what the collectors publish alone, cells read
// as PostgreSQL's text, a collector that fails alone leaves the bundle and comes back after
// succeeding alone, a bundle that times out is cancelled on the server and its parts run alone
// next time, a bundle switched off is retried after a backoff.
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pgstats/collector_bundle.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "pgstats/json_rows.hpp"
#include "pgstats/live_connection.hpp"
#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::PgServer;

using Cells = std::vector<std::vector<std::optional<std::string>>>;

Cells AllCells(const RowSet& r) {
  Cells out;
  for (int row = 0; row < r.Rows(); ++row) {
    out.emplace_back();
    for (int col = 0; col < r.Columns(); ++col) {
      out.back().push_back(r.IsNull(row, col) ? std::nullopt
                                              : std::optional<std::string>(r.Text(row, col)));
    }
  }
  return out;
}

TEST_CASE("JsonRows: cells read as PostgreSQL's text", "[pgstats]") {
  auto parts = ParseBundleReply(
      R"({"a": [{"big": 9223372036854775807, "u": 18446744073709551615,)"
      R"( "huge": 123456789012345678901234567890, "f": 0.1, "e": 1e+300, "neg": -42,)"
      R"( "nan": "NaN", "inf": "Infinity", "yes": true, "no": false, "nothing": null,)"
      R"( "s": "x\"y\u00e9", "empty": ""}], "b": [], "c": null})");
  REQUIRE(parts.has_value());
  REQUIRE(parts->size() == 3);
  const JsonRows& a = parts->at("a");
  CHECK(a.Rows() == 1);
  REQUIRE(a.Columns() == 13);
  CHECK(a.column_names().front() == "big");
  CHECK(a.column_names().back() == "empty");
  CHECK(a.Text(0, 0) == "9223372036854775807");  // bigints keep every digit
  CHECK(a.Text(0, 1) == "18446744073709551615");
  CHECK(a.Text(0, 2) == "123456789012345678901234567890");  // numeric: as written
  CHECK(a.Double(0, 2) == Approx(1.2345678901234568e29));
  CHECK(a.Text(0, 3) == "0.1");
  CHECK(a.Double(0, 3) == 0.1);
  CHECK(a.Text(0, 4) == "1e+300");
  CHECK(a.Double(0, 5) == -42);
  CHECK(std::isnan(*a.Double(0, 6)));
  CHECK(std::isinf(*a.Double(0, 7)));
  CHECK(a.Text(0, 8) == "t");
  CHECK(a.Text(0, 9) == "f");
  CHECK_FALSE(a.Double(0, 8).has_value());  // as QueryResult::Double("t")
  CHECK(a.IsNull(0, 10));
  CHECK(a.Text(0, 10).empty());
  CHECK_FALSE(a.Double(0, 10).has_value());
  CHECK(a.Text(0, 11) == "x\"y\xc3\xa9");
  CHECK_FALSE(a.IsNull(0, 12));
  CHECK(a.Text(0, 12).empty());
  // Out of range reads as NULL.
  CHECK(a.IsNull(1, 0));
  CHECK(a.IsNull(0, 13));
  CHECK(a.IsNull(-1, 0));
  CHECK(a.Text(5, 5).empty());
  // Empty parts: no rows, no columns.
  CHECK(parts->at("b").Rows() == 0);
  CHECK(parts->at("b").Columns() == 0);
  CHECK(parts->at("c").Rows() == 0);
}

TEST_CASE("JsonRows: several rows keep the column order", "[pgstats]") {
  auto parts = ParseBundleReply(R"({"p": [{"z": 1, "a": "x"}, {"z": 2, "a": null}]})");
  REQUIRE(parts.has_value());
  const JsonRows& p = parts->at("p");
  CHECK(p.Rows() == 2);
  CHECK(p.column_names() == std::vector<std::string>{"z", "a"});
  CHECK(AllCells(p) == Cells{{"1", "x"}, {"2", std::nullopt}});
}

TEST_CASE("JsonRows: any other shape is an error that names it", "[pgstats]") {
  auto error = [](const std::string& json) {
    auto r = ParseBundleReply(json);
    return r ? std::string() : r.error();
  };
  CHECK(error(R"({"p": [{"n": 1, "n": 2}]})").find("column \"n\" twice") != std::string::npos);
  CHECK(error(R"({"p": [{"a": 1}, {"b": 1}]})").find("different columns") != std::string::npos);
  CHECK(error(R"({"p": [{"a": 1}, {"a": 1, "b": 2}]})").find("different columns") !=
        std::string::npos);
  CHECK(error(R"({"p": [{"a": {"x": 1}}]})").find("nested object") != std::string::npos);
  CHECK(error(R"({"p": [{"a": [1]}]})").find("nested array") != std::string::npos);
  CHECK(error(R"({"p": [1]})").find("outside a row") != std::string::npos);
  CHECK(error(R"({"p": 1})").find("outside a row") != std::string::npos);
  CHECK(error(R"({"p": [], "p": []})").find("twice") != std::string::npos);
  CHECK(error(R"([1])").find("unexpected array") != std::string::npos);
  CHECK(error(R"({"p": [)").find("malformed JSON") != std::string::npos);
  CHECK(error("").find("malformed JSON") != std::string::npos);
  CHECK(error(R"({"p": []})").empty());
}

TEST_CASE("BundleStatement: one tagged statement, each part by name", "[pgstats]") {
  const std::string sql =
      BundleStatement({{"locks", "/* pgvigil */ SELECT 1 AS a"}, {"it's", "SELECT 2 AS b"}});
  CHECK(sql.rfind("/* pgvigil */ SELECT json_build_object(", 0) == 0);
  CHECK(sql.find("'locks', (SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM "
                 "(/* pgvigil */ SELECT 1 AS a) t)") != std::string::npos);
  CHECK(sql.find("'it''s'") != std::string::npos);
  CHECK(sql.find(';') == std::string::npos);
}

// ------------------------------------------------------------------------------------------
// Live

std::string Exposition(const prometheus::Registry& r) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, r.Collect());
  return out.str();
}

// The exposition without pgvigil's own collector series (durations and times differ by run).
std::string PgSeries(const prometheus::Registry& r) {
  std::istringstream in(Exposition(r));
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.find("pgvigil_collector_") == std::string::npos) out += line + "\n";
  }
  return out;
}

// A collector running one fixed statement; keeps the cells it read last.
class SqlPart final : public OneStatementCollector {
 public:
  SqlPart(const char* name, std::string sql) : name_(name), sql_(std::move(sql)) {}
  const char* name() const override { return name_; }
  void Forget() override {}
  Cells cells;
  int reads = 0;

 protected:
  std::string Sql(const Connection&) const override { return sql_; }
  void Read(const RowSet& r) override {
    ++reads;
    cells = AllCells(r);
  }

 private:
  const char* name_;
  std::string sql_;
};

TEST_CASE("Bundle: the same series and values as the collectors alone [live]", "[pgstats][live]") {
  PgServer pg;
  pg.Psql("CREATE TABLE locked_table (id int); GRANT ALL ON locked_table TO vigil;");
  REQUIRE(test::Eventually(
      [&] { return pg.Psql("SELECT buffers_alloc FROM pg_stat_bgwriter") != "0"; }, 10s));
  // Another session holds locks and an open transaction.
  Connection holder = OpenStatsSession(pg);
  REQUIRE(holder.Exec("BEGIN", Clock::now() + 5s).has_value());
  REQUIRE(holder.Exec("LOCK TABLE locked_table IN ACCESS EXCLUSIVE MODE", Clock::now() + 5s)
              .has_value());

  prometheus::Registry bundled_registry, alone_registry;
  DbStatsOptions alone_options;
  alone_options.bundle = false;
  DbStatsCollector bundled(bundled_registry);
  DbStatsCollector alone(alone_registry, alone_options);
  Connection conn = OpenStatsSession(pg);
  // Both read one snapshot of the statistics: one transaction, stats_fetch_consistency =
  // snapshot (pg_locks is not snapshotted, but the transaction holds every lock both take by
  // the time the second one reads it).
  REQUIRE(conn.Exec("SET stats_fetch_consistency = snapshot", Clock::now() + 5s).has_value());
  REQUIRE(conn.Exec("BEGIN", Clock::now() + 5s).has_value());
  REQUIRE(bundled.RunAll(conn, Clock::now() + 20s).ok());
  REQUIRE(alone.RunAll(conn, Clock::now() + 20s).ok());
  REQUIRE(bundled.RunAll(conn, Clock::now() + 20s).ok());  // as the locks are all held now
  REQUIRE(conn.Exec("COMMIT", Clock::now() + 5s).has_value());

  const nlohmann::json status = bundled.StatusJson();
  INFO(status.dump());
  CHECK(status["bundle"]["runs"] == 2);
  CHECK(status["bundle"]["failures"] == 0);
  CHECK(status["bundle"]["last_parts"] == nlohmann::json{"postmaster", "stat_database",
                                                         "stat_activity", "locks", "stat_bgwriter",
                                                         "replication", "neon_lfc"});
  CHECK(alone.StatusJson()["bundle"]["runs"] == 0);

  const std::string b = PgSeries(bundled_registry);
  const std::string a = PgSeries(alone_registry);
  CHECK(b.find("pg_locks_count{datname=\"postgres\",mode=\"accessexclusivelock\"} 1") !=
        std::string::npos);
  CHECK(b.find("pg_stat_activity_count{datname=\"postgres\",state=\"idle in transaction\"} 1") !=
        std::string::npos);
  CHECK(b.find("pg_stat_bgwriter_buffers_alloc_total") != std::string::npos);
  CHECK(b.find("pg_postmaster_start_time_seconds") != std::string::npos);
  CHECK(b.find("pgvigil_neon_lfc_available 0") != std::string::npos);
  CHECK(b == a);
  // Each part keeps its own collector series.
  const std::string text = Exposition(bundled_registry);
  for (const char* c : {"postmaster", "stat_database", "stat_activity", "locks", "stat_bgwriter",
                        "replication", "neon_lfc"}) {
    INFO(c);
    CHECK(test::MetricValue(
              text, std::string("pgvigil_collector_errors_total{collector=\"") + c + "\"}") == 0);
    CHECK(test::MetricValue(text, std::string("pgvigil_collector_last_success_timestamp_seconds{"
                                              "collector=\"") +
                                      c + "\"}") > 0);
  }
}

TEST_CASE("Bundle: cells read as PostgreSQL's text, in the bundle as alone [live]",
          "[pgstats][live]") {
  PgServer pg;
  const std::string sql =
      "/* pgvigil */ SELECT g AS n, 9007199254740993::bigint * g AS big, "
      "9223372036854775807::bigint AS max_big, 123456789012345678901234567890::numeric AS huge, "
      "0.1::float8 * g AS f, 1e300::float8 AS e, 'NaN'::float8 AS nan, "
      "'-Infinity'::float8 AS ninf, g = 1 AS first, NULL::int AS nothing, "
      "E'x\"y\\\\z\u00e9\\n' AS s, '' AS empty, 12.50::numeric(6,2) AS money "
      "FROM generate_series(1, 3) g ORDER BY g";
  prometheus::Registry r1, r2;
  SqlPart *in_bundle = nullptr, *by_itself = nullptr;
  std::vector<std::unique_ptr<Collector>> l1, l2;
  l1.push_back(std::make_unique<SqlPart>("cells", sql));
  l1.push_back(std::make_unique<SqlPart>("other", "/* pgvigil */ SELECT 1 AS one"));
  in_bundle = static_cast<SqlPart*>(l1[0].get());
  l2.push_back(std::make_unique<SqlPart>("cells", sql));
  l2.push_back(std::make_unique<SqlPart>("other", "/* pgvigil */ SELECT 1 AS one"));
  by_itself = static_cast<SqlPart*>(l2[0].get());
  DbStatsOptions alone_options;
  alone_options.bundle = false;
  DbStatsCollector bundled(r1, {}, std::move(l1));
  DbStatsCollector alone(r2, alone_options, std::move(l2));
  Connection conn = OpenStatsSession(pg);
  REQUIRE(bundled.RunAll(conn, Clock::now() + 20s).ok());
  REQUIRE(alone.RunAll(conn, Clock::now() + 20s).ok());
  CHECK(bundled.StatusJson()["bundle"]["runs"] == 1);
  REQUIRE(by_itself->cells.size() == 3);
  CHECK(by_itself->cells[0][1] == "9007199254740993");  // not a double's ...992
  CHECK(by_itself->cells[2][1] == "27021597764222979");
  CHECK(by_itself->cells[0][8] == "t");
  CHECK(by_itself->cells[0][9] == std::nullopt);
  CHECK(by_itself->cells[0][12] == "12.50");
  CHECK(in_bundle->cells == by_itself->cells);
}

TEST_CASE("Bundle: a collector that fails alone leaves the bundle, the rest stay in it [live]",
          "[pgstats][live]") {
  PgServer pg;
  // vigil may no longer call one function: the bundle statement fails as a whole.
  pg.Psql("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;");
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  DbStatsRunStatus status = collector.RunAll(conn, Clock::now() + 20s);
  CHECK(status.failed == 1);  // postmaster alone; the others ran alone and published
  CHECK(status.succeeded == 9);
  CHECK_FALSE(status.connection_lost);
  nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["bundle"]["failures"] == 1);
  CHECK(health["bundle"]["error"].get<std::string>().find("permission denied") !=
        std::string::npos);
  CHECK(health["bundle"]["alone"] == nlohmann::json{"postmaster"});
  std::string text = Exposition(registry);
  CHECK_FALSE(test::MetricValue(text, "pg_postmaster_start_time_seconds").has_value());
  CHECK(test::MetricValue(text, R"(pgvigil_collector_errors_total{collector="postmaster"})") == 1);
  CHECK(test::MetricValue(text, R"(pgvigil_collector_errors_total{collector="locks"})") == 0);
  CHECK(test::MetricValue(text, "pg_replication_is_replica") == 0);

  // Next run: the bundle works without it; postmaster fails alone again.
  status = collector.RunAll(conn, Clock::now() + 20s);
  CHECK(status.failed == 1);
  health = collector.StatusJson();
  CHECK(health["bundle"]["runs"] == 2);
  CHECK(health["bundle"]["failures"] == 1);
  CHECK_FALSE(health["bundle"].contains("error"));
  CHECK(health["bundle"]["last_parts"] == nlohmann::json{"stat_database", "stat_activity", "locks",
                                                         "stat_bgwriter", "replication",
                                                         "neon_lfc"});

  // Granted again, it recovers alone, and that success brings it back into the bundle.
  pg.Psql("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC;");
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  text = Exposition(registry);
  CHECK(test::MetricValue(text, "pg_postmaster_start_time_seconds").has_value());
  CHECK(collector.StatusJson()["bundle"]["alone"].empty());
}

TEST_CASE(
    "Bundle: a collector that left it is back after succeeding alone; one that leaves again "
    "needs twice the successes [live]",
    "[pgstats][live]") {
  PgServer pg;
  // Successful statements by kind (pg_stat_statements counts only those that completed).
  const auto calls = [&](const std::string& where) {
    return std::stoi(
        pg.Psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT LIKE "
                "'%pg_stat_statements%' AND " +
                where));
  };
  const std::string bundle_with_it =
      "query LIKE '%json_build_object%' AND query LIKE '%pg_postmaster_start_time%'";
  const std::string it_alone =
      "query LIKE '/* pgvigil */%pg_postmaster_start_time%' AND query NOT LIKE "
      "'%json_build_object%'";
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  const auto run = [&] { return collector.RunAll(conn, Clock::now() + 20s); };

  REQUIRE(run().ok());  // all in the bundle
  CHECK(calls(bundle_with_it) == 1);
  CHECK(calls(it_alone) == 0);

  // A privilege taken away for a while (as a transient error would): it leaves the bundle.
  pg.Psql("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;");
  CHECK(run().failed == 1);
  nlohmann::json b = collector.StatusJson()["bundle"];
  INFO(b.dump());
  CHECK(b["alone"] == nlohmann::json{"postmaster"});
  REQUIRE(b["alone_detail"].contains("postmaster"));
  CHECK(b["alone_detail"]["postmaster"]["reason"].get<std::string>().find("permission denied") !=
        std::string::npos);
  CHECK(b["alone_detail"]["postmaster"]["readmit_after"] == 1);
  CHECK(b["alone_detail"]["postmaster"]["since"].get<std::string>().size() >= 20);
  CHECK(b["enabled"] == true);

  // While it keeps failing, a run costs 2 statements: the bundle without it and it alone.
  for (int i = 0; i < 2; ++i) {
    const long long runs = collector.StatusJson()["bundle"]["runs"];
    CHECK(run().failed == 1);
    b = collector.StatusJson()["bundle"];
    CHECK(b["runs"] == runs + 1);
    CHECK(b["failures"] == 1);  // the bundle without it works
    CHECK(b["alone"] == nlohmann::json{"postmaster"});
    CHECK(b["alone_detail"]["postmaster"]["successes_alone"] == 0);
  }
  CHECK(calls(bundle_with_it) == 1);
  const std::string text = Exposition(registry);
  CHECK(test::MetricValue(text, R"(pgvigil_collector_errors_total{collector="postmaster"})") == 3);

  // Granted again: its next run alone succeeds and it is back in; the run after, it rides in the
  // bundle and runs alone no more.
  pg.Psql("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC;");
  REQUIRE(run().ok());
  CHECK(calls(it_alone) == 1);
  b = collector.StatusJson()["bundle"];
  CHECK(b["alone"].empty());
  CHECK(b["alone_detail"].empty());
  REQUIRE(run().ok());
  CHECK(calls(it_alone) == 1);
  CHECK(calls(bundle_with_it) == 2);
  b = collector.StatusJson()["bundle"];
  CHECK(b["last_parts"].size() == 7);
  CHECK_FALSE(b.contains("error"));

  // It fails again (a flap): out again, and now two successes alone in a row bring it back.
  pg.Psql("REVOKE EXECUTE ON FUNCTION pg_postmaster_start_time() FROM PUBLIC;");
  CHECK(run().failed == 1);
  b = collector.StatusJson()["bundle"];
  CHECK(b["failures"] == 2);
  CHECK(b["alone_detail"]["postmaster"]["readmit_after"] == 2);
  pg.Psql("GRANT EXECUTE ON FUNCTION pg_postmaster_start_time() TO PUBLIC;");
  REQUIRE(run().ok());
  b = collector.StatusJson()["bundle"];
  CHECK(b["alone"] == nlohmann::json{"postmaster"});
  CHECK(b["alone_detail"]["postmaster"]["successes_alone"] == 1);
  REQUIRE(run().ok());
  CHECK(collector.StatusJson()["bundle"]["alone"].empty());
  REQUIRE(run().ok());
  CHECK(calls(it_alone) == 3);  // alone twice after the flap, then back in the bundle
  CHECK(calls(bundle_with_it) == 3);
  CHECK(collector.StatusJson()["bundle"]["failures"] == 2);
}

TEST_CASE(
    "Bundle: one that times out is cancelled on the server (capped at the window's end); its "
    "parts run alone next time and the slow one leaves [live]",
    "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(std::make_unique<SqlPart>("cheap", "/* pgvigil */ SELECT 1 AS one"));
  list.push_back(std::make_unique<SqlPart>("sleepy", "/* pgvigil */ SELECT pg_sleep(30) AS z"));
  auto* cheap = static_cast<SqlPart*>(list[0].get());
  DbStatsCollector collector(registry, {}, std::move(list));  // 5 s timeouts

  Connection conn = OpenStatsSession(pg);
  auto start = Clock::now();
  DbStatsRunStatus status = collector.RunDue(conn, start, start + 400ms);
  CHECK(Clock::now() - start < 2s);  // the window's end, not the parts' 5 s
  CHECK(status.failed == 2);
  CHECK(status.connection_lost);
  CHECK(cheap->reads == 0);
  nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["bundle"]["timeouts"] == 1);
  CHECK(health["collectors"]["cheap"]["error"].get<std::string>().find("in the bundle") !=
        std::string::npos);
  const std::string running =
      "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
      "AND state = 'active' AND pid <> pg_backend_pid()";
  REQUIRE(test::Eventually([&] { return pg.Psql(running) == "0"; }, 5s));

  // Next time each alone: cheap publishes, sleepy times out alone and leaves the bundle.
  collector.Forget();  // due again
  Connection again = OpenStatsSession(pg);
  start = Clock::now();
  status = collector.RunDue(again, start, start + 1s);
  CHECK(status.succeeded == 1);
  CHECK(status.failed == 1);
  CHECK(cheap->reads == 1);
  health = collector.StatusJson();
  CHECK(health["bundle"]["runs"] == 1);
  CHECK(health["bundle"]["alone"] == nlohmann::json{"sleepy"});
  CHECK(health["collectors"]["sleepy"]["timeouts"] == 1);
  REQUIRE(test::Eventually([&] { return pg.Psql(running) == "0"; }, 5s));
}

}  // namespace
}  // namespace pgvigil

namespace pgvigil {
namespace {

TEST_CASE("Bundle: a database name that is not UTF-8 reads as U+FFFD, the bundle works [live]",
          "[pgstats][live]") {
  PgServer pg;
  pg.Psql(
      "CREATE DATABASE legacy TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
      "LC_CTYPE 'C'");
  pg.Psql("CREATE DATABASE \"caf\xE9\"", "legacy");
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  const nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["bundle"]["failures"] == 0);
  CHECK(health["bundle"]["runs"] == 1);
  const std::string text = Exposition(registry);
  CHECK(text.find("pg_stat_activity_count{datname=\"caf\xEF\xBF\xBD\",state=\"idle\"} 0") !=
        std::string::npos);
}

TEST_CASE(
    "Bundle: failing three times in a row while every part works alone, it is switched off "
    "[live]",
    "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  std::vector<std::unique_ptr<Collector>> list;
  // Alone this reads fine; in the bundle its json cell is a nested object: the reply is refused.
  list.push_back(
      std::make_unique<SqlPart>("nested", "/* pgvigil */ SELECT '{\"a\": 1}'::json AS j"));
  list.push_back(std::make_unique<SqlPart>("plain", "/* pgvigil */ SELECT 1 AS one"));
  auto* plain = static_cast<SqlPart*>(list[1].get());
  DbStatsCollector collector(registry, {}, std::move(list));
  Connection conn = OpenStatsSession(pg);
  for (int i = 1; i <= 3; ++i) {
    REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());  // each part alone published
    CHECK(plain->reads == i);
  }
  nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["bundle"]["failures"] == 3);
  CHECK(health["bundle"]["error"].get<std::string>().find("nested object") != std::string::npos);
  CHECK(health["bundle"]["alone"].empty());
  CHECK(health["bundle"]["enabled"] == false);
  CHECK(health["bundle"]["retry_backoff_seconds"] == 300);  // 10 x the 30 s interval
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  CHECK(collector.StatusJson()["bundle"]["runs"] == 3);  // no fourth try before then
  CHECK(plain->reads == 4);
}

TEST_CASE(
    "Bundle: switched off, it is retried after 10 intervals, then after twice that, and a "
    "success switches it back on [live]",
    "[pgstats][live]") {
  PgServer pg;
  // The part's value is a nested JSON object while `knob` says so: the bundle's reply is refused
  // while the part alone reads fine; a flat value makes the bundle work again.
  pg.Psql(
      "CREATE TABLE knob (v json); INSERT INTO knob VALUES ('{\"a\": 1}'); "
      "GRANT SELECT ON knob TO vigil;");
  const auto bundles = [&] {
    return std::stoi(
        pg.Psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE "
                "'%json_build_object%' AND query LIKE '%FROM knob%' AND query NOT LIKE "
                "'%pg_stat_statements%'"));
  };
  prometheus::Registry registry;
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(
      std::make_unique<SqlPart>("knob", "/* pgvigil */ SELECT (SELECT v FROM knob) AS j"));
  list.push_back(std::make_unique<SqlPart>("plain", "/* pgvigil */ SELECT 1 AS one"));
  auto* plain = static_cast<SqlPart*>(list[1].get());
  DbStatsOptions options;
  options.interval = 200ms;  // the first retry after 2 s, the next 4 s later
  DbStatsCollector collector(registry, options, std::move(list));
  Connection conn = OpenStatsSession(pg);
  const auto run = [&] { return collector.RunAll(conn, Clock::now() + 20s); };

  for (int i = 0; i < 3; ++i) REQUIRE(run().ok());
  const auto switched_off = Clock::now();
  nlohmann::json b = collector.StatusJson()["bundle"];
  INFO(b.dump());
  CHECK(b["enabled"] == false);
  CHECK(b["runs"] == 3);
  CHECK(b["retry_backoff_seconds"].get<double>() == Approx(2.0));
  CHECK(b["off_since"].is_string());
  CHECK(b["retry_at"].get<std::string>() > b["off_since"].get<std::string>());
  CHECK(bundles() == 3);  // it ran, and its reply was refused

  // Before the backoff: each alone, no bundle statement.
  REQUIRE(run().ok());
  if (Clock::now() - switched_off < 1500ms) {  // a very slow machine proves nothing here
    CHECK(collector.StatusJson()["bundle"]["runs"] == 3);
    CHECK(bundles() == 3);
  }
  CHECK(plain->reads == 4);

  // After it: one retry, which fails the same way: off again, for twice as long.
  std::this_thread::sleep_until(switched_off + 2200ms);
  REQUIRE(run().ok());
  const auto retried = Clock::now();
  b = collector.StatusJson()["bundle"];
  CHECK(b["runs"] == 4);
  CHECK(b["failures"] == 4);
  CHECK(b["enabled"] == false);
  CHECK(b["retry_backoff_seconds"].get<double>() == Approx(4.0));
  CHECK(bundles() == 4);
  CHECK(plain->reads == 5);

  // The cause goes away; the bundle waits for its retry, which then succeeds and stays on.
  pg.Psql("UPDATE knob SET v = '1'");
  REQUIRE(run().ok());
  if (Clock::now() - retried < 3s) CHECK(collector.StatusJson()["bundle"]["runs"] == 4);
  std::this_thread::sleep_until(retried + 4300ms);
  REQUIRE(run().ok());
  b = collector.StatusJson()["bundle"];
  CHECK(b["runs"] == 5);
  CHECK(b["failures"] == 4);
  CHECK(b["enabled"] == true);
  CHECK_FALSE(b.contains("retry_at"));
  CHECK_FALSE(b.contains("error"));
  REQUIRE(run().ok());
  CHECK(collector.StatusJson()["bundle"]["runs"] == 6);
  CHECK(bundles() == 6);
  CHECK(plain->reads == 8);
}

}  // namespace
}  // namespace pgvigil
