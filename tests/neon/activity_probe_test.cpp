#include "neon/activity_probe.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "db/connection.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

ActivitySample Sample(long long other_sessions, long long other_active, double last_change,
                      long long sessions_total) {
  ActivitySample s;
  s.other_sessions = other_sessions;
  s.other_active = other_active;
  s.other_last_change = last_change;
  s.sessions_total = sessions_total;
  return s;
}

TEST_CASE("ParseActivityRow", "[neon]") {
  auto s = ParseActivityRow({"2", "1", "1714564800.123456", "57", "1234", "1714564801.5"});
  REQUIRE(s);
  CHECK(s->other_sessions == 2);
  CHECK(s->other_active == 1);
  CHECK(s->other_last_change == Approx(1714564800.123456));
  CHECK(s->sessions_total == 57);
  CHECK(s->xact_total == 1234);
  CHECK(s->server_now == Approx(1714564801.5));
  std::string error;
  CHECK_FALSE(ParseActivityRow({"1", "2"}, &error));
  CHECK_THAT(error, Catch::Contains("expected 6"));
  CHECK_FALSE(ParseActivityRow({"x", "1", "0", "1", "1", "1"}, &error));
  CHECK_THAT(error, Catch::Contains("other_sessions"));
  CHECK_FALSE(ParseActivityRow({"1", "1", "", "1", "1", "1"}, &error));
  CHECK_THAT(error, Catch::Contains("other_last_change"));
}

TEST_CASE("ActivityTracker: signals and our own connects", "[neon]") {
  ActivityTracker t;
  // Baseline: nothing is foreign unless somebody is running a query right now.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 10), 1).foreign);
  // Our own new connection: sessions +1, own +1.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 11), 2).foreign);
  // Our connect counted before the server shows it: dips, then catches up. Never foreign.
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 11), 3).foreign);
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 12), 3).foreign);
  // A short-lived foreign session.
  auto v = t.Observe(Sample(1, 0, 100, 13), 3);
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("connected"));
  CHECK_FALSE(t.Observe(Sample(1, 0, 100, 13), 3).foreign);
  // A long-lived idle session ran a query between looks.
  v = t.Observe(Sample(1, 0, 150, 13), 3);
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("ran a query"));
  CHECK_FALSE(t.Observe(Sample(1, 0, 150, 13), 3).foreign);
  // The session left: the newest change goes back in time, which is not activity.
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 13), 3).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 120, 13), 3).foreign);
  // Somebody running a query right now.
  v = t.Observe(Sample(1, 1, 160, 14), 3);
  CHECK(v.foreign);
  CHECK_THAT(v.reason, Catch::Contains("running"));
  // Counters reset (compute restarted): Reset() starts a new baseline.
  t.Reset();
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 1), 4).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 2), 5).foreign);
  CHECK(t.Observe(Sample(0, 0, 0, 3), 5).foreign);
}

TEST_CASE("ActivityTracker ignores the session counter behind a pooler", "[neon]") {
  ActivityTracker t(false);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 10), 1).foreign);
  CHECK_FALSE(t.Observe(Sample(0, 0, 0, 20), 1).foreign);
  CHECK(t.Observe(Sample(1, 0, 5, 20), 1).foreign);
}

// Runs kActivitySql on `conn` and feeds the tracker.
ActivityVerdict Look(Connection& conn, ActivityTracker& tracker, std::uint64_t own_connects) {
  auto r = ProbeActivity(conn, "pgvigil", tracker, own_connects, SteadyTime::clock::now() + 5s);
  if (!r.ok()) FAIL("activity query failed: " << r.error->message);
  return *r.value;
}

ConnParams Params(const std::string& url, const std::string& app) {
  auto parsed = ParseDatabaseUrl(url);
  REQUIRE(parsed.params);
  ConnParams p = *parsed.params;
  p.Set("application_name", app);
  return p;
}

TEST_CASE("activity probe live: other clients are seen, pgvigil's own probes are not",
          "[neon][live]") {
  test::PgServer server;
  auto ours = Params(server.Url(), "pgvigil");
  auto deadline = [] { return SteadyTime::clock::now() + 5s; };
  std::uint64_t own_connects = 0;
  auto opened = Connection::Open(ours, deadline());
  REQUIRE(opened.ok());
  ++own_connects;
  Connection conn = std::move(*opened.value);
  ActivityTracker tracker;
  CHECK_FALSE(Look(conn, tracker, own_connects).foreign);

  {  // our own probes, reconnects and a second pgvigil connection are not foreign
    for (int i = 0; i < 8; ++i) {
      REQUIRE(conn.Exec("SELECT 1", deadline()).ok());
      if (i % 3 == 0) {
        // Another connection of ours (e.g. pool size 2 or a reconnect), open and close.
        auto extra = Connection::Open(ours, deadline());
        REQUIRE(extra.ok());
        ++own_connects;
        REQUIRE(extra.value->Exec("SELECT 1", deadline()).ok());
      }
      auto v = Look(conn, tracker, own_connects);
      CHECK_FALSE(v.foreign);
      if (v.foreign) WARN(v.reason);
      std::this_thread::sleep_for(150ms);
    }
    // Statistics are flushed with a delay; give them time and look again.
    std::this_thread::sleep_for(1200ms);
    REQUIRE(conn.Exec("SELECT 1", deadline()).ok());
    CHECK_FALSE(Look(conn, tracker, own_connects).foreign);
  }

  {  // a long-lived application session running queries is seen
    auto app = Connection::Open(Params(server.Url(), "myapp"), deadline());
    REQUIRE(app.ok());
    // Its connect and first query happen between two looks.
    REQUIRE(app.value->Exec("SELECT count(*) FROM pg_class", deadline()).ok());
    CHECK(Look(conn, tracker, own_connects).foreign);
    CHECK_FALSE(Look(conn, tracker, own_connects).foreign);  // idle since: quiet
    std::this_thread::sleep_for(20ms);
    REQUIRE(app.value->Exec("SELECT 42", deadline()).ok());
    auto v = Look(conn, tracker, own_connects);
    CHECK(v.foreign);
    CHECK_THAT(v.reason, Catch::Contains("ran a query"));
  }

  {  // a query running right now is seen
    std::thread app([&] {
      auto c = Connection::Open(Params(server.Url(), "myapp"), deadline());
      if (c.ok()) (void)c.value->Exec("SELECT pg_sleep(1.5)", deadline());
    });
    std::this_thread::sleep_for(500ms);
    auto v = Look(conn, tracker, own_connects);
    app.join();
    CHECK(v.foreign);
    CHECK_THAT(v.reason, Catch::Contains("running"));
  }

  {  // a short-lived session that came and went is seen through the session counter
    server.Psql("SELECT 1");  // psql over the socket: connects, queries, disconnects
    // Its statistics are flushed at exit; allow for a slow flush.
    bool seen = false;
    for (int i = 0; i < 20 && !seen; ++i) {
      seen = Look(conn, tracker, own_connects).foreign;
      if (!seen) std::this_thread::sleep_for(100ms);
    }
    CHECK(seen);
    CHECK_FALSE(Look(conn, tracker, own_connects).foreign);
  }
}

}  // namespace
}  // namespace pgvigil
