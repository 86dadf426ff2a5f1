#include "neon/activity_probe.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "db/connection.hpp"
#include "support/pg_server.hpp"
#include "support/url_params.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

ActivitySample Sample(long long other_sessions, long long other_active, double last_change,
                      long long sessions_total, double active_ms = 0, double now = 1000) {
  ActivitySample s;
  s.other_sessions = other_sessions;
  s.other_active = other_active;
  s.other_last_change = last_change;
  s.sessions_total = sessions_total;
  s.active_time_ms = active_ms;
  s.server_now = now;
  return s;
}

OwnUsage Own(std::uint64_t connects, double exec_ms = 0) { return OwnUsage{connects, exec_ms}; }

TEST_CASE("ParseActivityRow", "[neon]") {
  auto s = ParseActivityRow(
      {"2", "1", "1714564800.123456", "57", "1234.5", "1", "2", "3", "1714564801.5"});
  REQUIRE(s);
  CHECK(s->other_sessions == 2);
  CHECK(s->other_active == 1);
  CHECK(s->other_last_change == Approx(1714564800.123456));
  CHECK(s->sessions_total == 57);
  CHECK(s->active_time_ms == Approx(1234.5));
  CHECK(s->walsenders == 1);
  CHECK(s->subscriptions == 2);
  CHECK(s->autovacuum_workers == 3);
  CHECK(s->server_now == Approx(1714564801.5));
  std::string error;
  CHECK_FALSE(ParseActivityRow({"1", "2"}, &error));
  CHECK_THAT(error, Catch::Contains("expected 9"));
  CHECK_FALSE(ParseActivityRow({"x", "1", "0", "1", "1", "0", "0", "0", "1"}, &error));
  CHECK_THAT(error, Catch::Contains("other_sessions"));
  CHECK_FALSE(ParseActivityRow({"1", "1", "", "1", "1", "0", "0", "0", "1"}, &error));
  CHECK_THAT(error, Catch::Contains("other_last_change"));
  CHECK(NeonExcludedDatabase("postgres"));
  CHECK(NeonExcludedDatabase("template1"));
  CHECK_FALSE(NeonExcludedDatabase("app"));
}

TEST_CASE("ActivityTracker: signals and our own connects", "[neon]") {
  ActivityTracker t;
  // Baseline: nothing is foreign unless somebody is running a query right now.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 10), Own(1)).foreign);
  // Our own new connection: sessions +1, own +1.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 11), Own(2)).foreign);
  // Our connect counted before the server shows it: dips, then catches up. Never foreign.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 11), Own(3)).foreign);
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 12), Own(3)).foreign);
  // A short-lived foreign session.
  auto v = t.Observe(Sample(1, 0, 100, 13), Own(3));
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("connected"));
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 13), Own(3)).foreign);
  // A long-lived idle session ran a query between looks.
  v = t.Observe(Sample(1, 0, 150, 13), Own(3));
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("ran a query"));
  CHECK_FALSE(t.Observe(Sample(1, 0, 150, 13), Own(3)).foreign);
  // The session left: the newest change goes back in time, which is not activity.
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 13), Own(3)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 120, 13), Own(3)).foreign);
  // Somebody running a query (or idle in transaction) right now.
  v = t.Observe(Sample(1, 1, 160, 14), Own(3));
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("idle in transaction"));
  CHECK_FALSE(v.keeps_awake);
  // Counters reset (compute restarted): Reset() starts a new baseline.
  t.Reset();
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 1), Own(4)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 2), Own(5)).foreign);
  CHECK(t.Observe(Sample(0, 0, 0, 3), Own(5)).foreign);
}

TEST_CASE("ActivityTracker: active_time beyond our own statement time", "[neon]") {
  ActivityTracker t;
  double now = 1000;
  // Our statements: counted by us at once, by the server up to 10 s later, and by us a little
  // longer than by the server (network). Never foreign.
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 100.0, now), Own(5, 0)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 100.0, now += 1), Own(5, 2.0)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 100.0, now += 1), Own(5, 4.0)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 103.5, now += 8), Own(5, 6.0)).foreign);  // flushed
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 105.4, now += 1), Own(5, 8.0)).foreign);
  // An app session that came and went between looks, in a database Neon counts: 25 ms.
  auto v = t.Observe(Sample(0, 0, 0, 5, 130.4, now += 1), Own(5, 8.0));
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("active for"));
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 5, 130.4, now += 1), Own(5, 8.0)).foreign);
  // Long after, our drift (client time > server time) is forgotten: small foreign work shows.
  for (int i = 0; i < 40; ++i) {
    CHECK_FALSE(
        t.Observe(Sample(0, 0, 0, 5, 130.4 + i * 0.9, now += 1), Own(5, 8.0 + i * 1.0)).foreign);
  }
  CHECK(t.Observe(Sample(0, 0, 0, 5, 130.4 + 39 * 0.9 + 3, now += 1), Own(5, 8.0 + 39)).foreign);
}

TEST_CASE("ActivityTracker: replication and autovacuum keep the compute awake", "[neon]") {
  ActivityTracker t;
  auto s = Sample(0, 0, 0, 5);
  s.walsenders = 1;
  auto v = t.Observe(s, Own(5));
  CHECK(v.foreign);
  CHECK(v.keeps_awake);
  CHECK_THAT(v.reason, Catch::Contains("walsender"));
  s.walsenders = 0;
  s.subscriptions = 1;
  CHECK(t.Observe(s, Own(5)).keeps_awake);
  s.subscriptions = 0;
  s.autovacuum_workers = 2;
  v = t.Observe(s, Own(5));
  CHECK(v.keeps_awake);
  CHECK_THAT(v.reason, Catch::Contains("autovacuum"));
  s.autovacuum_workers = 0;
  CHECK_FALSE(t.Observe(s, Own(5)).foreign);
}

TEST_CASE("ActivityTracker ignores the session counter behind a pooler", "[neon]") {
  ActivityTracker t(false);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 10), Own(1)).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 20), Own(1)).foreign);
  CHECK(t.Observe(Sample(1, 0, 5, 20), Own(1)).foreign);
}

// Runs kActivitySql on `conn` and feeds the tracker.
ActivityVerdict Look(Connection& conn, ActivityTracker& tracker, const OwnUsage& own) {
  auto r = ProbeActivity(conn, "pgvigil", tracker, own, SteadyTime::clock::now() + 5s);
  if (!r.has_value()) FAIL("activity query failed: " << r.error().message);
  return *r;
}

ConnParams AppParams(const std::string& url, const std::string& app) {
  ConnParams p = test::UrlParams(url);
  p.Set("application_name", app);
  return p;
}

TEST_CASE("activity probe live: other clients are seen, pgvigil's own probes are not",
          "[neon][live]") {
  test::PgServer server;
  server.Psql("CREATE DATABASE app");  // Neon leaves `postgres` out of its counters
  auto ours = AppParams(server.Url("app"), "pgvigil");
  auto deadline = [] { return SteadyTime::clock::now() + 5s; };
  std::uint64_t connects = 0;
  double closed_exec_ms = 0;
  auto opened = Connection::Open(ours, deadline());
  REQUIRE(opened.has_value());
  ++connects;
  Connection conn = std::move(*opened);
  // What the scheduler passes: our connects and statement time (the look's own included).
  auto own_now = [&] {
    return OwnUsage{
        connects,
        closed_exec_ms + std::chrono::duration<double, std::milli>(conn.exec_time()).count()};
  };
  ActivityTracker tracker;
  CHECK_FALSE(Look(conn, tracker, own_now()).foreign);

  {  // our own probes, reconnects and a second pgvigil connection are not foreign
    for (int i = 0; i < 8; ++i) {
      REQUIRE(conn.Exec("SELECT 1", deadline()).has_value());
      if (i % 3 == 0) {
        // Another connection of ours (e.g. pool size 2 or a reconnect), open and close.
        auto extra = Connection::Open(ours, deadline());
        REQUIRE(extra.has_value());
        ++connects;
        REQUIRE(extra->Exec("SELECT 1", deadline()).has_value());
        closed_exec_ms += std::chrono::duration<double, std::milli>(extra->exec_time()).count();
      }
      auto v = Look(conn, tracker, own_now());
      CHECK_FALSE(v.foreign);
      if (v.foreign) WARN(v.reason);
      std::this_thread::sleep_for(150ms);
    }
    // Statistics are flushed with a delay; give them time and look again.
    std::this_thread::sleep_for(1200ms);
    REQUIRE(conn.Exec("SELECT 1", deadline()).has_value());
    CHECK_FALSE(Look(conn, tracker, own_now()).foreign);
  }

  {  // a long-lived application session running queries is seen
    auto app = Connection::Open(AppParams(server.Url("app"), "myapp"), deadline());
    REQUIRE(app.has_value());
    // Its connect and first query happen between two looks.
    REQUIRE(app->Exec("SELECT count(*) FROM pg_class", deadline()).has_value());
    CHECK(Look(conn, tracker, own_now()).foreign);
    CHECK_FALSE(Look(conn, tracker, own_now()).foreign);  // idle since: quiet
    std::this_thread::sleep_for(20ms);
    REQUIRE(app->Exec("SELECT 42", deadline()).has_value());
    auto v = Look(conn, tracker, own_now());
    CHECK(v.foreign);
    CHECK_THAT(v.reason, Catch::Contains("ran a query"));
  }

  {  // a query running right now is seen
    std::thread app([&] {
      auto c = Connection::Open(AppParams(server.Url("app"), "myapp"), deadline());
      if (c.has_value()) (void)c->Exec("SELECT pg_sleep(1.5)", deadline());
    });
    std::this_thread::sleep_for(500ms);
    auto v = Look(conn, tracker, own_now());
    app.join();
    CHECK(v.foreign);
    CHECK_THAT(v.reason, Catch::Contains("running"));
  }

  {  // a short-lived session that came and went is seen through the session counter
    // The sessions above flush their statistics when they exit, on the server's pace: wait until
    // the looks are quiet, so what is seen next is psql's.
    auto quiet = [&] {
      for (int i = 0; i < 30; ++i) {
        if (!Look(conn, tracker, own_now()).foreign) return true;
        std::this_thread::sleep_for(100ms);
      }
      return false;
    };
    REQUIRE(quiet());
    server.Psql("SELECT 1", "app");  // psql over the socket: connects, queries, disconnects
    // Its statistics are flushed at exit; allow for a slow flush.
    bool seen = false;
    for (int i = 0; i < 20 && !seen; ++i) {
      seen = Look(conn, tracker, own_now()).foreign;
      if (!seen) std::this_thread::sleep_for(100ms);
    }
    CHECK(seen);
    CHECK(quiet());  // and once it has been seen, nothing more (a late part of its flush at most)
  }

  {  // sessions on `postgres` that come and go (where Neon's exporters scrape) are not activity
    for (int i = 0; i < 3; ++i) (void)server.Psql("SELECT count(*) FROM pg_stat_database");
    auto c = Connection::Open(AppParams(server.Url("app"), "pgvigil"), deadline());
    REQUIRE(c.has_value());
    ++connects;
    closed_exec_ms += std::chrono::duration<double, std::milli>(c->exec_time()).count();
    std::this_thread::sleep_for(1200ms);  // statistics flushed
    CHECK_FALSE(Look(conn, tracker, own_now()).foreign);
    CHECK_FALSE(Look(conn, tracker, own_now()).foreign);
  }
}

}  // namespace
}  // namespace pgvigil
