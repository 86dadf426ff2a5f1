// Live tests of what issue 14 asks of the statement sampler, against a real PostgreSQL 15: new
// statements count from their first window, eviction churn keeps totals honest, the history
// answers for earlier windows (time injected), and a LATIN1 database comes back as UTF-8.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "config/database_url.hpp"
#include "db/connection.hpp"
#include "sampling/live_session.hpp"
#include "sampling/query_sampling.hpp"
#include "support/pg_server.hpp"
#include "util/time_format.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SamplerRunResult Sample(QuerySampling& s, Connection& own, SystemTime at) {
  auto r = s.RunStatements(own, Clock::now() + 10s, at);
  INFO(r.message);
  REQUIRE(r.status == CollectorStatus::kOk);
  return r;
}

const nlohmann::json* FindQuery(const nlohmann::json& list, const std::string& needle) {
  for (const auto& s : list) {
    if (s.contains("query") && s["query"].is_string() &&
        s["query"].get<std::string>().find(needle) != std::string::npos) {
      return &s;
    }
  }
  return nullptr;
}

// psql's -d takes a connection string: the LATIN1 database, spoken to in UTF-8.
constexpr const char* kLatin1Utf8 = "dbname=latin1db client_encoding=UTF8";

SamplingSettings TestSampling() {
  SamplingSettings s;
  s.top_n = 20;
  return s;
}

}  // namespace

TEST_CASE("A statement new since the first sample counts from its first window [live]",
          "[live][history]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSampling(), registry);
  Connection own = Open(pg, "pgvigil");
  Connection app = Open(pg, "workload");
  const auto t0 = std::chrono::system_clock::now();
  Sample(sampling, own, t0);  // the first sample: baselines only
  for (int i = 0; i < 50; ++i) Exec(app, "SELECT 'x' AS fresh_marker_q, 1");
  Sample(sampling, own, t0 + 2s);
  auto j = nlohmann::json::parse(sampling.QueriesJson());
  INFO(j.dump(1));
  const auto* last = FindQuery(j["statements"]["top_by_calls"], "fresh_marker_q");
  REQUIRE(last != nullptr);
  CHECK((*last)["calls"] == 50);
  CHECK(j["statements"]["window_new_statements"].get<int>() >= 1);
  const auto* agg = FindQuery(j["window"]["statements"], "fresh_marker_q");
  REQUIRE(agg != nullptr);
  CHECK((*agg)["calls"] == 50);
  CHECK(sampling.metrics().calls_total() >= 50);
}

TEST_CASE("Eviction churn: totals stay within 5% of what ran [live]", "[live][history]") {
  test::PgServerOptions options;
  options.extra_conf = {"pg_stat_statements.max = 100"};
  test::PgServer pg(options);
  pg.Psql(
      "DO $$ BEGIN FOR i IN 1..500 LOOP EXECUTE format('CREATE TABLE churn_%s (x int)', i); "
      "END LOOP; END $$; GRANT SELECT ON ALL TABLES IN SCHEMA public TO vigil");
  prometheus::Registry registry;
  QuerySampling sampling(TestSampling(), registry);
  Connection own = Open(pg, "pgvigil");
  Connection app = Open(pg, "workload");
  auto at = std::chrono::system_clock::now();
  Sample(sampling, own, at);
  Sample(sampling, own, at += 2s);  // pgvigil's own statements are known by now
  const double before = sampling.metrics().calls_total();
  // 500 distinct statements through a 100-entry pg_stat_statements, sampled every 10 of them
  // (a busy server between two samples, scaled down): each is created, sampled and evicted.
  int ran = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 1; i <= 10; ++i) {
      for (int k = 0; k < 5; ++k) {
        Exec(app, "SELECT count(*) FROM churn_" + std::to_string(round * 10 + i));
        ++ran;
      }
    }
    Sample(sampling, own, at += 2s);
  }
  const double counted = sampling.metrics().calls_total() - before;
  INFO("ran " << ran << ", counted " << counted);
  CHECK(ran == 2500);
  CHECK(std::abs(counted - ran) <= 0.05 * ran);
  CHECK(sampling.metrics().dealloc_total() > 0);
  QueriesRequest q;
  q.window = 10min;
  q.sort = QueriesSort::kCalls;
  auto j = nlohmann::json::parse(sampling.QueriesJson(q, at));
  CHECK(j["window"]["evictions"].get<int>() > 0);
  CHECK(j["window"]["complete"] == false);
  CHECK(std::abs(j["window"]["totals"]["calls"].get<double>() - ran) <= 0.05 * ran);
  CHECK(j["window"]["totals"]["statements"].get<int>() >= 475);
}

TEST_CASE("/queries?window=10m returns a statement seen 8 minutes ago [live]", "[live][history]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSampling(), registry);
  Connection own = Open(pg, "pgvigil");
  Connection app = Open(pg, "workload");
  // Time is injected: one sample a minute, the marker runs in the first window only.
  const auto t0 = std::chrono::system_clock::now();
  Sample(sampling, own, t0);
  for (int i = 0; i < 7; ++i) Exec(app, "SELECT 'x' AS eight_minutes_ago_q, 2");
  Sample(sampling, own, t0 + 1min);
  for (int m = 2; m <= 9; ++m) {
    Exec(app, "SELECT 'y' AS recent_q, 3, 4");  // another shape: another queryid
    Sample(sampling, own, t0 + m * 1min);
  }
  const auto now = t0 + 9min;
  std::string err;
  auto ten = sampling.ParseRequest({{"window", "10m"}}, now, &err);
  REQUIRE(ten);
  auto j = nlohmann::json::parse(sampling.QueriesJson(*ten, now));
  INFO(j["window"].dump(1));
  const auto* old = FindQuery(j["window"]["statements"], "eight_minutes_ago_q");
  REQUIRE(old != nullptr);
  CHECK((*old)["calls"] == 7);
  CHECK((*old)["last_seen"] == FormatRfc3339Utc(t0 + 1min));  // 8 minutes before now
  CHECK((*old)["first_seen"] == FormatRfc3339Utc(t0));
  CHECK(j["window"]["windows"] == 9);
  // The last window alone, or the last 5 minutes, no longer have it.
  CHECK(FindQuery(j["statements"]["top_by_calls"], "eight_minutes_ago_q") == nullptr);
  auto five = sampling.ParseRequest({{"window", "5m"}}, now, &err);
  REQUIRE(five);
  auto recent = nlohmann::json::parse(sampling.QueriesJson(*five, now));
  CHECK(FindQuery(recent["window"]["statements"], "eight_minutes_ago_q") == nullptr);
  CHECK(FindQuery(recent["window"]["statements"], "recent_q") != nullptr);
  // The default (15 minutes) has it too.
  auto dflt = sampling.ParseRequest({}, now, &err);
  REQUIRE(dflt);
  CHECK(FindQuery(nlohmann::json::parse(sampling.QueriesJson(*dflt, now))["window"]["statements"],
                  "eight_minutes_ago_q") != nullptr);
}

TEST_CASE("A LATIN1 database: names, literals and server messages arrive as UTF-8 [live]",
          "[live][latin1]") {
  test::PgServer pg;
  pg.Psql(
      "CREATE DATABASE latin1db ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE "
      "template0");
  // psql sends UTF-8 (said in its connection string: a SET would come too late for the text
  // sent with it); the server stores LATIN1.
  pg.Psql(
      "CREATE SCHEMA \"statistïk\"; "
      "GRANT USAGE ON SCHEMA \"statistïk\" TO vigil; "
      "CREATE EXTENSION pg_stat_statements SCHEMA \"statistïk\"; "
      "CREATE TABLE \"prüfung_größe\" (\"straße\" text); "
      "INSERT INTO \"prüfung_größe\" VALUES ('café'); "
      "GRANT SELECT ON \"prüfung_größe\" TO vigil",
      kLatin1Utf8);
  REQUIRE(pg.Psql("SELECT octet_length('é')", kLatin1Utf8) == "1");  // really LATIN1
  prometheus::Registry registry;
  SamplingSettings settings = TestSampling();
  settings.query_text = QueryTextMode::kRaw;  // literals too
  QuerySampling sampling(settings, registry);
  Connection own = Open(pg, "pgvigil", "latin1db");
  Connection app = Open(pg, "workload", "latin1db");
  CHECK(own.parameter("client_encoding") == "UTF8");
  CHECK(own.parameter("server_encoding") == "LATIN1");

  const auto t0 = std::chrono::system_clock::now();
  Sample(sampling, own, t0);
  const std::string query =
      "SELECT \"straße\" FROM \"prüfung_größe\" WHERE \"straße\" <> 'crème brûlée'";
  // A utility statement keeps its literals in pg_stat_statements (PG15): a LATIN1 literal.
  const std::string utility = "DO $$BEGIN PERFORM 'crème brûlée' FROM \"prüfung_größe\"; END$$";
  for (int i = 0; i < 3; ++i) Exec(app, query);
  Exec(app, utility);
  Sample(sampling, own, t0 + 2s);
  const std::string body = sampling.QueriesJson();
  auto j = nlohmann::json::parse(body);  // throws on invalid UTF-8
  INFO(body);
  const auto* hit = FindQuery(j["statements"]["top_by_calls"], "prüfung_größe\" WHERE");
  REQUIRE(hit != nullptr);
  CHECK((*hit)["query"] == "SELECT \"straße\" FROM \"prüfung_größe\" WHERE \"straße\" <> $1");
  CHECK((*hit)["calls"] == 3);
  CHECK((*hit)["database"] == "latin1db");
  const auto* literal = FindQuery(j["window"]["statements"], "'crème brûlée'");
  REQUIRE(literal != nullptr);
  CHECK((*literal)["query"] == utility);
  CHECK(body.find("\xEF\xBF\xBD") == std::string::npos);  // nothing had to be replaced

  // A server error naming a non-ASCII object: converted, readable, in /health's section.
  pg.Psql("REVOKE USAGE ON SCHEMA \"statistïk\" FROM vigil", kLatin1Utf8);
  auto failed = sampling.RunStatements(own, Clock::now() + 10s, t0 + 4s);
  CHECK(failed.status == CollectorStatus::kError);
  CHECK_THAT(failed.message, Catch::Contains("permission denied for schema statistïk"));
  auto status = nlohmann::json::parse(sampling.StatusJson());
  CHECK_THAT(status["statements"]["message"].get<std::string>(), Catch::Contains("statistïk"));
}

}  // namespace pgvigil
