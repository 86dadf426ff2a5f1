// The cadence of the statistics collectors: which run in a window (pure), the database-size
// plan (pure), and against a real PostgreSQL 15 [live]: a collector past its deadline is
// cancelled on the server and does not starve the others; database sizes are measured again
// only where something was written.
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "pgstats/database_size_plan.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "pgstats/live_connection.hpp"
#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::PgServer;

TEST_CASE("DueOrder: the due collectors, most overdue first, ties in list order", "[pgstats]") {
  const SteadyTime now = Clock::now();
  CHECK(DueOrder({}, now).empty());
  CHECK(DueOrder({now + 1s, now - 5s, SteadyTime{}, now, now - 5s}, now) ==
        std::vector<std::size_t>{2, 1, 4, 3});
  CHECK(DueOrder({now + 1ms}, now).empty());
}

TEST_CASE("FitsWindow: expected duration against the window, the first always runs", "[pgstats]") {
  const SteadyTime now = Clock::now();
  CHECK(FitsWindow(now, 100ms, now + 1s, false));
  CHECK(FitsWindow(now, 1s, now + 1s, false));
  CHECK_FALSE(FitsWindow(now, 1001ms, now + 1s, false));
  CHECK(FitsWindow(now, 10s, now + 1s, true));  // else a slow collector would never run
  CHECK_FALSE(FitsWindow(now, 0s, now, true));  // the window is over
  CHECK_FALSE(FitsWindow(now + 1ms, 0s, now, true));
}

TEST_CASE("CollectorInterval: override, else the base or the collector's minimum", "[pgstats]") {
  DbStatsOptions o;
  o.interval = 30s;
  CHECK(CollectorInterval("locks", 0ms, o) == 30s);
  CHECK(CollectorInterval("database", 5min, o) == 5min);
  o.interval = 10min;
  CHECK(CollectorInterval("database", 5min, o) == 10min);
  o.intervals["database"] = 1min;
  CHECK(CollectorInterval("database", 5min, o) == 1min);
}

TEST_CASE("DatabasesToSize: new, renamed, written to or reset since measured; all on a full pass",
          "[pgstats]") {
  const std::vector<DatabaseActivity> now = {
      {"1", "postgres", true, 100, 0},  // unchanged
      {"2", "app", true, 250, 0},       // written to
      {"3", "fresh", true, 0, 0},       // never measured
      {"4", "renamed", true, 7, 0},     // same oid, new name
      {"5", "reset", true, 3, 99},      // stats reset
      {"6", "private", false, 1, 0},    // we may not size it
  };
  const std::map<std::string, SizedDatabase> known = {
      {"1", {"postgres", 8e6, 100, 0}}, {"2", {"app", 9e6, 200, 0}},   {"4", {"old", 8e6, 7, 0}},
      {"5", {"reset", 8e6, 3, 0}},      {"9", {"dropped", 8e6, 0, 0}},
  };
  CHECK(DatabasesToSize(now, known, false) == std::vector<std::string>{"2", "3", "4", "5"});
  CHECK(DatabasesToSize(now, known, true) == std::vector<std::string>{"1", "2", "3", "4", "5"});
  CHECK(DatabasesToSize(now, {}, false) == std::vector<std::string>{"1", "2", "3", "4", "5"});
  CHECK(DatabasesToSize({}, known, true).empty());
}

TEST_CASE("SizeBatches: short statements of at most `batch` databases", "[pgstats]") {
  using Batches = std::vector<std::vector<std::string>>;
  CHECK(SizeBatches({}, 16).empty());
  CHECK(SizeBatches({"a", "b", "c", "d", "e"}, 2) == Batches{{"a", "b"}, {"c", "d"}, {"e"}});
  CHECK(SizeBatches({"a", "b"}, 0) == Batches{{"a"}, {"b"}});  // 0 is taken as 1
  CHECK(SizeBatches({"a", "b"}, 16) == Batches{{"a", "b"}});
}

// ------------------------------------------------------------------------------------------
// Live

// A collector that runs one fixed statement.
class SqlCollector final : public Collector {
 public:
  SqlCollector(const char* name, std::string sql) : name_(name), sql_(std::move(sql)) {}
  const char* name() const override { return name_; }
  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) override {
    ++runs;
    return CollectorQuery(conn, sql_, {}, deadline, [](const RowSet&) {});
  }
  void Forget() override {}
  int runs = 0;

 private:
  const char* name_;
  std::string sql_;
};

TEST_CASE(
    "RunDue: a collector past its deadline is cancelled on the server, the others run "
    "next window [live]",
    "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  DbStatsOptions options;
  options.timeouts["sleepy"] = 300ms;
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(std::make_unique<SqlCollector>("sleepy", "/* pgvigil */ SELECT pg_sleep(30)"));
  list.push_back(std::make_unique<SqlCollector>("cheap", "/* pgvigil */ SELECT 1"));
  auto* sleepy = static_cast<SqlCollector*>(list[0].get());
  auto* cheap = static_cast<SqlCollector*>(list[1].get());
  DbStatsCollector collector(registry, options, std::move(list));
  CHECK(collector.Due(Clock::now()));

  Connection conn = OpenStatsSession(pg);
  auto start = Clock::now();
  DbStatsRunStatus status = collector.RunDue(conn, start, start + 5s);
  CHECK(Clock::now() - start < 2s);
  CHECK(status.failed == 1);
  CHECK(status.skipped == 1);  // the connection went with the timeout
  CHECK(status.connection_lost);
  CHECK(cheap->runs == 0);
  const nlohmann::json health = collector.StatusJson();
  INFO(health.dump());
  CHECK(health["collectors"]["sleepy"]["timeouts"] == 1);
  CHECK(health["collectors"]["sleepy"]["timeout_seconds"] == Approx(0.3));
  CHECK(health["collectors"]["cheap"]["ran"] == false);

  // The server stops the statement instead of sleeping on for 30 s.
  const std::string running =
      "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' "
      "AND state = 'active' AND pid <> pg_backend_pid()";
  const auto until = Clock::now() + 5s;
  std::string left = pg.Psql(running);
  while (left.find('0') != 0 && Clock::now() < until) {
    std::this_thread::sleep_for(50ms);
    left = pg.Psql(running);
  }
  CHECK(left.find('0') == 0);

  // Next window: the starved collector is the most overdue and goes first; sleepy is not due.
  Connection again = OpenStatsSession(pg);
  start = Clock::now();
  status = collector.RunDue(again, start, start + 5s);
  CHECK(status.succeeded == 1);
  CHECK(status.failed == 0);
  CHECK(cheap->runs == 1);
  CHECK(sleepy->runs == 1);
  CHECK_FALSE(collector.Due(Clock::now()));
  CHECK(collector.NextDue() > Clock::now() + 20s);  // both wait for their 30 s interval
}

TEST_CASE("RunDue: stops before a collector whose last duration would pass the window [live]",
          "[pgstats][live]") {
  PgServer pg;
  prometheus::Registry registry;
  std::vector<std::unique_ptr<Collector>> list;
  list.push_back(std::make_unique<SqlCollector>("cheap", "/* pgvigil */ SELECT 1"));
  list.push_back(std::make_unique<SqlCollector>("slow", "/* pgvigil */ SELECT pg_sleep(0.4)"));
  auto* slow = static_cast<SqlCollector*>(list[1].get());
  DbStatsCollector collector(registry, {}, std::move(list));
  Connection conn = OpenStatsSession(pg);
  REQUIRE(collector.RunAll(conn, Clock::now() + 5s).ok());  // learns slow takes ~0.4 s
  collector.Forget();                                       // both due again
  auto start = Clock::now();
  DbStatsRunStatus status = collector.RunDue(conn, start, start + 300ms);
  CHECK(status.succeeded == 1);  // cheap
  CHECK(status.skipped == 1);    // slow would not fit: next window
  CHECK(slow->runs == 1);
  CHECK(collector.Due(Clock::now()));
  // Alone at the head of the next window it runs, whatever its expected duration.
  start = Clock::now();
  status = collector.RunDue(conn, start, start + 2s);
  CHECK(status.succeeded == 1);
  CHECK(slow->runs == 2);
}

TEST_CASE("Database sizes: measured again only where something was written [live]",
          "[pgstats][live]") {
  PgServer pg;
  pg.Psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  pg.Psql("CREATE DATABASE quiet");
  pg.Psql("CREATE DATABASE busy");
  prometheus::Registry registry;
  DbStatsCollector collector(registry);
  Connection conn = OpenStatsSession(pg);
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  auto text = [&] {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry.Collect());
    return out.str();
  };
  const auto busy_before = test::MetricValue(text(), R"(pg_database_size_bytes{datname="busy"})");
  REQUIRE(busy_before.has_value());
  const std::string sized =
      "SELECT coalesce(sum(rows), 0) FROM pg_stat_statements "
      "WHERE query LIKE '%pg_database_size(oid)%' AND query NOT LIKE '%pg_stat_statements%'";
  const int all = std::stoi(pg.Psql(sized));
  CHECK(all >= 5);  // postgres, template0, template1, quiet, busy

  pg.Psql("SELECT pg_stat_statements_reset()");
  pg.Psql("CREATE TABLE t AS SELECT g, repeat('x', 100) AS v FROM generate_series(1, 20000) g",
          "busy");
  // The writer's statistics reach pg_stat_database when its session ends (psql exits).
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  const int again = std::stoi(pg.Psql(sized));
  CHECK(again >= 1);
  CHECK(again < all);  // not every database again
  const auto busy_after = test::MetricValue(text(), R"(pg_database_size_bytes{datname="busy"})");
  REQUIRE(busy_after.has_value());
  CHECK(*busy_after > *busy_before + 1e6);
  CHECK(test::MetricValue(text(), R"(pg_database_size_bytes{datname="quiet"})").has_value());
  CHECK(collector.StatusJson()["series_exported"] == true);

  // Forget: no size series until the next run, which measures every database again.
  collector.Forget();
  CHECK_FALSE(test::MetricValue(text(), R"(pg_database_size_bytes{datname="busy"})").has_value());
  CHECK(collector.StatusJson()["series_exported"] == false);
  CHECK(collector.Due(Clock::now()));
  pg.Psql("SELECT pg_stat_statements_reset()");
  REQUIRE(collector.RunAll(conn, Clock::now() + 20s).ok());
  CHECK(std::stoi(pg.Psql(sized)) == all);
  CHECK(test::MetricValue(text(), R"(pg_database_size_bytes{datname="busy"})").has_value());
}

}  // namespace
}  // namespace pgvigil
