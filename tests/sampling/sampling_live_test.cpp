// Live tests: the samplers against a real PostgreSQL 15 with pg_stat_statements (tests/support).
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "config/database_url.hpp"
#include "db/connection.hpp"
#include "sampling/live_session.hpp"
#include "sampling/query_sampling.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// For a background session: Catch2's macros are not thread-safe, so this reports back instead
// ("" when the statement ran) and the test thread checks the answer after join(). `options` is
// libpq's options parameter (e.g. "-c standard_conforming_strings=off"), "" for none.
std::string RunElsewhere(const test::PgServer& pg, const std::string& app, const std::string& sql,
                         const std::string& options = "") {
  ParsedUrl parsed = ParseDatabaseUrl(pg.Url());
  if (!parsed) return "bad URL: " + parsed.error().message;
  parsed->Set("application_name", app);
  if (!options.empty()) parsed->Set("options", options);
  auto opened = Connection::Open(*parsed, Clock::now() + 10s);
  if (!opened.has_value()) return "connect: " + opened.error().message;
  auto r = opened->Exec(sql, Clock::now() + 10s);
  return r ? "" : sql + ": " + r.error().message;
}

SamplingSettings TestSettings() {
  SamplingSettings s;
  s.slow_threshold = 500ms;
  s.top_n = 10;
  return s;
}

const TopStatement* FindByText(const std::vector<TopStatement>& list, const std::string& needle) {
  for (const auto& t : list) {
    if (t.text && t.text->text.find(needle) != std::string::npos) return &t;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("Statement sampler reports deltas of a known workload [live]", "[live][statements]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");
  Connection app = Open(pg, "workload");
  const std::string query =
      "SELECT count(*) AS pgvigil_test_marker FROM generate_series(1, 10) g "
      "WHERE g > 3 AND 'hunter2' <> 'x'";

  Exec(app, query);  // the entry exists before the baseline: a new key only sets a baseline
  auto base = sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  INFO(base.message);
  REQUIRE(base.status == CollectorStatus::kOk);
  CHECK(base.rows > 0);
  CHECK(sampling.statements().top_by_time().empty());

  for (int i = 0; i < 50; ++i) Exec(app, query);
  auto second = sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  REQUIRE(second.status == CollectorStatus::kOk);
  const TopStatement* hit = FindByText(sampling.statements().top_by_calls(), "pgvigil_test_marker");
  REQUIRE(hit != nullptr);
  CHECK(hit->delta.calls == 50);
  CHECK(hit->delta.rows == 50);
  CHECK(hit->delta.total_exec_ms >= 0);
  CHECK(hit->text->text.find("hunter2") == std::string::npos);
  CHECK(hit->text->text.find("generate_series(") != std::string::npos);
  CHECK(hit->text->fingerprint.size() == 16);
  CHECK(hit->datname == "postgres");
  CHECK(hit->usename == "vigil");
  CHECK(FindByText(sampling.statements().top_by_time(), "pgvigil_test_marker") != nullptr);
  CHECK(sampling.metrics().calls_total() >= 50);
  CHECK(sampling.metrics().available() == 1);

  // pgvigil's own statements (tagged /* pgvigil */) never show up, even after several runs.
  sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  for (int i = 0; i < 3; ++i) Exec(app, query);
  auto later = sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  REQUIRE(later.status == CollectorStatus::kOk);
  for (const auto* list :
       {&sampling.statements().top_by_time(), &sampling.statements().top_by_calls()}) {
    for (const auto& t : *list) {
      REQUIRE(t.text);
      INFO(t.text->text);
      CHECK(t.text->text.find("pg_stat_statements(") == std::string::npos);
      CHECK(t.text->text.find("pg_extension") == std::string::npos);
    }
  }
  const TopStatement* again =
      FindByText(sampling.statements().top_by_calls(), "pgvigil_test_marker");
  REQUIRE(again != nullptr);
  CHECK(again->delta.calls == 3);

  // /queries JSON carries the same, obfuscated.
  auto j = nlohmann::json::parse(sampling.QueriesJson());
  CHECK(j["statements"]["status"] == "ok");
  CHECK(j["statements"]["pg_stat_statements"]["available"] == true);
  CHECK(j["statements"]["pg_stat_statements"]["max"] == 5000);
  CHECK(j["statements"]["top_by_calls"].size() >= 1);
  CHECK(sampling.QueriesJson().find("hunter2") == std::string::npos);
  auto status = nlohmann::json::parse(sampling.StatusJson());
  CHECK(status["statements"]["status"] == "ok");
  CHECK_FALSE(status.contains("hint"));

  SECTION("pg_stat_statements_reset between samples gives no negative or huge numbers") {
    const double calls_before = sampling.metrics().calls_total();
    pg.Psql("SELECT pg_stat_statements_reset()");
    for (int i = 0; i < 5; ++i) Exec(app, query);
    auto after_reset =
        sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
    REQUIRE(after_reset.status == CollectorStatus::kOk);
    for (const auto& t : sampling.statements().top_by_calls()) {
      CHECK(t.delta.calls >= 0);
      CHECK(t.delta.calls < 1000);
      CHECK(t.delta.total_exec_ms >= 0);
    }
    const double calls_after = sampling.metrics().calls_total();
    CHECK(calls_after >= calls_before);
    CHECK(calls_after - calls_before < 1000);
    CHECK(nlohmann::json::parse(sampling.QueriesJson())["statements"]["rebaselined"] == true);

    for (int i = 0; i < 7; ++i) Exec(app, query);
    sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
    const TopStatement* post =
        FindByText(sampling.statements().top_by_calls(), "pgvigil_test_marker");
    REQUIRE(post != nullptr);
    CHECK(post->delta.calls == 7);
  }
}

TEST_CASE("Activity sampler catches a long-running query [live]", "[live][activity]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");

  std::string slow_error, own_error;
  std::thread slow([&] {
    slow_error = RunElsewhere(pg, "workload", "SELECT pg_sleep(2), 'hunter2' AS secret");
  });
  std::thread own_slow([&] {  // a session of pgvigil itself: never sampled
    own_error = RunElsewhere(pg, "pgvigil", "SELECT pg_sleep(2), 'own' AS own_marker");
  });
  std::this_thread::sleep_for(1200ms);
  auto r = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  auto again = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  slow.join();
  own_slow.join();
  CHECK(slow_error.empty());
  CHECK(own_error.empty());

  INFO(r.message);
  REQUIRE(r.status == CollectorStatus::kOk);
  CHECK(r.rows == 1);
  REQUIRE(again.status == CollectorStatus::kOk);
  const auto& recent = sampling.activity().recent();
  REQUIRE(recent.size() == 1);  // the second run is inside the cool-down window
  const LongRunningSample& s = recent.front();
  CHECK(s.application_name == "workload");
  CHECK(s.state == "active");
  CHECK(s.duration_seconds >= 0.5);
  CHECK(s.duration_seconds < 10);
  CHECK(s.wait_event_type == "Timeout");
  CHECK(s.wait_event == "PgSleep");
  CHECK(s.datname == "postgres");
  CHECK(s.usename == "vigil");
  CHECK(s.text.text == "SELECT pg_sleep(?), ? AS secret");
  CHECK_FALSE(s.truncated_by_server);
  CHECK(sampling.metrics().long_running() == 1);
  CHECK(sampling.metrics().long_running_max_seconds() >= 0.5);

  auto j = nlohmann::json::parse(sampling.QueriesJson());
  REQUIRE(j["activity"]["samples"].size() == 1);
  CHECK(j["activity"]["samples"][0]["query"] == "SELECT pg_sleep(?), ? AS secret");
  CHECK(j["activity"]["status"] == "ok");
  CHECK(sampling.QueriesJson().find("hunter2") == std::string::npos);

  // Once it has finished, the gauges drop back.
  auto idle = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  REQUIRE(idle.status == CollectorStatus::kOk);
  CHECK(sampling.metrics().long_running() == 0);
  CHECK(sampling.metrics().long_running_max_seconds() == 0);
}

TEST_CASE("Activity sampler flags texts cut at track_activity_query_size [live]",
          "[live][activity]") {
  test::PgServerOptions options;
  options.pg_stat_statements = false;
  options.extra_conf = {"track_activity_query_size = 100"};
  test::PgServer pg(options);
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");
  std::string slow_error;
  std::thread slow([&] {
    slow_error =
        RunElsewhere(pg, "workload",
                     "SELECT pg_sleep(1.5) AS a_rather_long_column_alias_to_fill_the_text, "
                     "'padding padding padding padding hunter2 hunter2 hunter2' AS b");
  });
  std::this_thread::sleep_for(900ms);
  auto r = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  slow.join();
  CHECK(slow_error.empty());
  REQUIRE(r.status == CollectorStatus::kOk);
  REQUIRE(sampling.activity().recent().size() == 1);
  const auto& s = sampling.activity().recent().front();
  CHECK(s.truncated_by_server);
  CHECK(s.text.text.find("hunter") == std::string::npos);  // cut mid-string: hidden to the end
}

TEST_CASE("A legacy-strings session cannot leak a secret through the samplers [live]",
          "[live][activity]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");
  REQUIRE(sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now()).status ==
          CollectorStatus::kOk);
  // With standard_conforming_strings off this is one literal holding "x', hunter2, "; read
  // with it on, hunter2 would stand outside any string.
  std::string slow_error;
  std::thread slow([&] {
    // standard_conforming_strings off: backslash escapes in plain '...' strings, as in
    // PostgreSQL before 9.1 and in some legacy applications.
    slow_error = RunElsewhere(pg, "legacy", "SELECT 'x\\', hunter2, ' AS a, pg_sleep(1.5)",
                              "-c standard_conforming_strings=off");
  });
  std::this_thread::sleep_for(900ms);
  auto r = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  slow.join();
  CHECK(slow_error.empty());
  REQUIRE(r.status == CollectorStatus::kOk);
  REQUIRE(sampling.activity().recent().size() == 1);
  CHECK(sampling.activity().recent().front().text.text == "SELECT ?");
  REQUIRE(sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now()).status ==
          CollectorStatus::kOk);
  CHECK(sampling.QueriesJson().find("hunter2") == std::string::npos);
}

TEST_CASE("A role without pg_monitor is reported as seeing only its own queries [live]",
          "[live][activity]") {
  test::PgServer pg;
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");
  auto j = nlohmann::json::parse(sampling.StatusJson());
  CHECK(j["visibility"].is_null());  // not known before the first run

  REQUIRE(sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now()).status ==
          CollectorStatus::kOk);
  j = nlohmann::json::parse(sampling.StatusJson());
  CHECK(j["visibility"]["all_sessions"] == true);
  CHECK(j["visibility"]["role"] == "vigil");
  CHECK_FALSE(j.contains("hint"));

  pg.Psql("REVOKE pg_monitor FROM vigil");
  REQUIRE(sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now()).status ==
          CollectorStatus::kOk);
  j = nlohmann::json::parse(sampling.StatusJson());
  INFO(j.dump());
  CHECK(j["visibility"]["all_sessions"] == false);
  CHECK(j["hint"].get<std::string>().find("GRANT pg_monitor TO \"vigil\"") != std::string::npos);
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, registry.Collect());
  CHECK(text.str().find("pgvigil_sampling_full_visibility 0") != std::string::npos);

  pg.Psql("GRANT pg_monitor TO vigil");
  REQUIRE(sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now()).status ==
          CollectorStatus::kOk);
  j = nlohmann::json::parse(sampling.StatusJson());
  CHECK(j["visibility"]["all_sessions"] == true);
}

TEST_CASE("Missing pg_stat_statements is reported and sampling keeps running [live]",
          "[live][statements]") {
  test::PgServerOptions options;
  options.pg_stat_statements = false;
  test::PgServer pg(options);
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  Connection own = Open(pg, "pgvigil");
  for (int i = 0; i < 2; ++i) {
    auto r = sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
    CHECK(r.status == CollectorStatus::kUnavailable);
    CHECK(r.message.find("CREATE EXTENSION pg_stat_statements") != std::string::npos);
    CHECK_FALSE(r.error);
  }
  CHECK_FALSE(own.broken());
  CHECK(sampling.metrics().available() == 0);
  CHECK(sampling.metrics().statements_collector().errors() == 0);
  auto status = nlohmann::json::parse(sampling.StatusJson());
  CHECK(status["statements"]["status"] == "unavailable");
  CHECK(status["hint"].get<std::string>().find("shared_preload_libraries") != std::string::npos);
  auto a = sampling.RunActivity(own, Clock::now() + 5s, std::chrono::system_clock::now());
  CHECK(a.status == CollectorStatus::kOk);

  // Created without the library preloaded: the function refuses (55000); still a status.
  pg.Psql("CREATE EXTENSION pg_stat_statements");
  auto r = sampling.RunStatements(own, Clock::now() + 5s, std::chrono::system_clock::now());
  CHECK(r.status == CollectorStatus::kUnavailable);
  CHECK(r.message.find("shared_preload_libraries") != std::string::npos);
}

}  // namespace pgvigil

namespace pgvigil {

TEST_CASE("Samplers work through PgBouncer in transaction mode [live]", "[live][pooler]") {
  test::PgServer pg;
  test::PgBouncer bouncer(pg);
  ParsedUrl parsed = ParseDatabaseUrl(bouncer.Url());
  REQUIRE(parsed.has_value());
  auto opened = Connection::Open(*parsed, Clock::now() + 10s);
  REQUIRE(opened.has_value());
  Connection& conn = *opened;
  prometheus::Registry registry;
  QuerySampling sampling(TestSettings(), registry);
  for (int i = 0; i < 2; ++i) {
    auto s = sampling.RunStatements(conn, Clock::now() + 5s, std::chrono::system_clock::now());
    INFO(s.message);
    CHECK(s.status == CollectorStatus::kOk);
    auto a = sampling.RunActivity(conn, Clock::now() + 5s, std::chrono::system_clock::now());
    INFO(a.message);
    CHECK(a.status == CollectorStatus::kOk);
  }
}

}  // namespace pgvigil
