// StatsLeader against a real PostgreSQL 15 (and PgBouncer in transaction mode) [live]: one leader
// per database, followers that take over when the leader's session ends, no lock through a
// pooler, and the pgvigil_stats_leader gauge.
#include "fleet/stats_leader.hpp"

#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::MetricValue;
using test::PgBouncer;
using test::PgServer;

Connection Open(const std::string& url) {
  ParsedUrl parsed = ParseDatabaseUrl(url);
  if (!parsed) throw std::runtime_error("bad test URL: " + parsed.error().message);
  auto opened = Connection::Open(*parsed, Clock::now() + 10s);
  if (!opened.has_value()) throw std::runtime_error("connect failed: " + opened.error().message);
  return std::move(*opened);
}

double Gauge(const prometheus::Registry& r) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, r.Collect());
  return MetricValue(out.str(), "pgvigil_stats_leader").value_or(-1);
}

// Advisory locks with pgvigil's key held on the server, whoever holds them.
std::string LockHolders(const PgServer& pg) {
  std::string out = pg.Psql(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND classid = " +
      std::to_string(kStatsLeaderLockKey >> 32) +
      " AND objid = " + std::to_string(kStatsLeaderLockKey & 0xffffffff));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// A sidecar's pool holds up to two sessions; the window's job may bring either one.
TEST_CASE(
    "StatsLeader: another pooled session neither demotes the leader nor speeds a follower "
    "[live]",
    "[fleet][live]") {
  PgServer pg;
  prometheus::Registry ra, rb;
  StatsLeader a(StatsElection::kAuto, 5s, ra);
  StatsLeader b(StatsElection::kAuto, 5s, rb);
  std::optional<Connection> a1 = Open(pg.Url());
  Connection a2 = Open(pg.Url());
  Connection b1 = Open(pg.Url());
  Connection b2 = Open(pg.Url());
  const auto t0 = Clock::now();
  REQUIRE(a.MayCollect(*a1, t0, Clock::now() + 5s));
  // The leader's other session finds the lock held by its first one: still the leader.
  CHECK(a.MayCollect(a2, t0 + 1s, Clock::now() + 5s));
  CHECK(a.role() == StatsRole::kLeader);
  CHECK(Gauge(ra) == 1);
  CHECK(a.MayCollect(*a1, t0 + 2s, Clock::now() + 5s));
  CHECK(LockHolders(pg) == "1");

  // A follower asked again within its retry interval, on its other session, sends nothing.
  CHECK_FALSE(b.MayCollect(b1, t0, Clock::now() + 5s));
  const std::string calls_sql =
      "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE "
      "'%pg_try_advisory_lock%'";
  const std::string before = pg.Psql(calls_sql);
  CHECK_FALSE(b.MayCollect(b2, t0 + 1s, Clock::now() + 5s));
  CHECK(pg.Psql(calls_sql) == before);
  CHECK(b.role() == StatsRole::kFollower);

  // The leader's lock session closes: the leader's other session takes the lock at its next
  // check, before the follower's.
  a1.reset();
  REQUIRE(test::Eventually([&] { return LockHolders(pg) == "0"; }, 5s));
  CHECK(a.MayCollect(a2, t0 + 6s, Clock::now() + 5s));
  CHECK(a.role() == StatsRole::kLeader);
  CHECK_FALSE(b.MayCollect(b2, t0 + 6s, Clock::now() + 5s));
}

TEST_CASE("StatsLeader: one leader per database; a follower takes over when it goes [live]",
          "[fleet][live]") {
  PgServer pg;
  prometheus::Registry ra, rb;
  StatsLeader a(StatsElection::kAuto, 5s, ra);
  StatsLeader b(StatsElection::kAuto, 5s, rb);
  CHECK(a.role() == StatsRole::kNone);
  CHECK(Gauge(ra) == 0);

  std::optional<Connection> ca = Open(pg.Url());
  Connection cb = Open(pg.Url());
  const auto t0 = Clock::now();
  CHECK(a.MayCollect(*ca, t0, Clock::now() + 5s));
  CHECK(a.role() == StatsRole::kLeader);
  CHECK(Gauge(ra) == 1);
  CHECK_FALSE(b.MayCollect(cb, t0, Clock::now() + 5s));
  CHECK(b.role() == StatsRole::kFollower);
  CHECK(Gauge(rb) == 0);
  const nlohmann::json status = b.StatusJson();
  INFO(status.dump());
  CHECK(status["role"] == "follower");
  CHECK(status["collects"] == false);
  CHECK(status["leader_pid"] == ca->backend_pid());
  CHECK(status["election"] == "auto");

  // The leader asks nothing while its session lasts; the follower waits for its interval.
  const auto exec_before = ca->exec_time();
  CHECK(a.MayCollect(*ca, t0 + 1s, Clock::now() + 5s));
  CHECK(ca->exec_time() == exec_before);
  const auto follower_before = cb.exec_time();
  CHECK_FALSE(b.MayCollect(cb, t0 + 4s, Clock::now() + 5s));
  CHECK(cb.exec_time() == follower_before);

  // Locks are per database: another database elects its own leader.
  pg.Psql("CREATE DATABASE other");
  prometheus::Registry rc;
  StatsLeader c(StatsElection::kAuto, 5s, rc);
  Connection cc = Open(pg.Url("other"));
  CHECK(c.MayCollect(cc, t0, Clock::now() + 5s));

  // The leader's session ends (process killed, connection dropped, compute suspended): the
  // follower's next try, one interval later, wins.
  ca.reset();
  std::this_thread::sleep_for(200ms);  // the server ends the backend and frees its lock
  CHECK(b.MayCollect(cb, t0 + 5s, Clock::now() + 5s));
  CHECK(b.role() == StatsRole::kLeader);
  CHECK(Gauge(rb) == 1);
  CHECK(b.StatusJson()["leader_pid"] == cb.backend_pid());

  // The old leader comes back on a new session and follows.
  ca = Open(pg.Url());
  CHECK_FALSE(a.MayCollect(*ca, t0 + 6s, Clock::now() + 5s));
  CHECK(a.role() == StatsRole::kFollower);
  CHECK(Gauge(ra) == 0);
}

TEST_CASE("StatsLeader: database lost, then the same session leads again [live]", "[fleet][live]") {
  PgServer pg;
  prometheus::Registry r;
  StatsLeader a(StatsElection::kAuto, 5s, r);
  Connection conn = Open(pg.Url());
  REQUIRE(a.MayCollect(conn, Clock::now(), Clock::now() + 5s));
  a.OnDatabaseLost("the probe failed");
  CHECK(a.role() == StatsRole::kNone);
  CHECK(Gauge(r) == 0);
  CHECK(a.StatusJson()["why"] == "the probe failed");
  CHECK(a.MayCollect(conn, Clock::now(), Clock::now() + 5s));  // re-entrant on its own session
  CHECK(a.role() == StatsRole::kLeader);
}

TEST_CASE("StatsLeader: through PgBouncer (transaction mode) no lock is taken; all collect [live]",
          "[fleet][live]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  prometheus::Registry ra, rb;
  StatsLeader a(StatsElection::kAuto, 5s, ra);
  StatsLeader b(StatsElection::kAuto, 5s, rb);
  Connection ca = Open(bouncer.Url());
  Connection cb = Open(bouncer.Url());
  CHECK(a.MayCollect(ca, Clock::now(), Clock::now() + 5s));
  CHECK(b.MayCollect(cb, Clock::now(), Clock::now() + 5s));
  CHECK(a.role() == StatsRole::kAllCollect);
  CHECK(Gauge(ra) == 1);
  const nlohmann::json status = a.StatusJson();
  INFO(status.dump());
  CHECK(status["collects"] == true);
  CHECK(status["hint"].get<std::string>().find("neon.sampling_url") != std::string::npos);
  CHECK(LockHolders(pg) == "0");
}

TEST_CASE("StatsLeader: stats.election = off collects without asking [live]", "[fleet][live]") {
  PgServer pg;
  prometheus::Registry r;
  StatsLeader a(StatsElection::kOff, 5s, r);
  CHECK(a.role() == StatsRole::kAllCollect);
  CHECK(Gauge(r) == 1);
  Connection conn = Open(pg.Url());
  const auto before = conn.exec_time();
  CHECK(a.MayCollect(conn, Clock::now(), Clock::now() + 5s));
  CHECK(conn.exec_time() == before);
  CHECK(a.StatusJson()["election"] == "off");
  a.OnDatabaseLost("down");
  CHECK(a.role() == StatsRole::kAllCollect);
}

// Ahead of a probe the scheduler passes `early` (half a probe interval): the retry runs at the
// probe tick nearest its due time, and the next one is due one interval after that due time.
TEST_CASE(
    "StatsLeader: a follower's retry ahead of a probe runs up to `early` before it is due "
    "and keeps its pace [live]",
    "[fleet][live]") {
  PgServer pg;
  prometheus::Registry ra, rb;
  StatsLeader a(StatsElection::kAuto, 5s, ra);
  StatsLeader b(StatsElection::kAuto, 5s, rb);
  Connection ca = Open(pg.Url());
  Connection cb = Open(pg.Url());
  const auto t0 = Clock::now();
  REQUIRE(a.MayCollect(ca, t0, Clock::now() + 5s));
  CHECK_FALSE(b.MayCollect(cb, t0, Clock::now() + 5s));  // follower; next try due at t0 + 5 s
  auto tried = [&cb, before = cb.exec_time()]() mutable {
    const bool sent = cb.exec_time() != before;
    before = cb.exec_time();
    return sent;
  };
  CHECK_FALSE(b.MayCollect(cb, t0 + 4400ms, Clock::now() + 5s, 500ms));  // 600 ms early
  CHECK_FALSE(tried());
  CHECK_FALSE(b.MayCollect(cb, t0 + 4600ms, Clock::now() + 5s));  // no `early`: not yet
  CHECK_FALSE(tried());
  CHECK_FALSE(b.MayCollect(cb, t0 + 4600ms, Clock::now() + 5s, 500ms));  // 400 ms early: now
  CHECK(tried());
  CHECK(b.role() == StatsRole::kFollower);
  // The next one is due at t0 + 10 s (its due time plus the interval), not 4.6 s + 5 s.
  CHECK_FALSE(b.MayCollect(cb, t0 + 9400ms, Clock::now() + 5s, 500ms));
  CHECK_FALSE(tried());
  CHECK_FALSE(b.MayCollect(cb, t0 + 9500ms, Clock::now() + 5s, 500ms));
  CHECK(tried());
  // A late one (no tick near its due time) counts the interval from when it ran.
  CHECK_FALSE(b.MayCollect(cb, t0 + 16s, Clock::now() + 5s, 500ms));  // due 15 s: 1 s late
  CHECK(tried());
  CHECK_FALSE(b.MayCollect(cb, t0 + 20400ms, Clock::now() + 5s, 500ms));  // due 21 s
  CHECK_FALSE(tried());
  CHECK_FALSE(b.MayCollect(cb, t0 + 20600ms, Clock::now() + 5s, 500ms));
  CHECK(tried());
  // The leader asks nothing, `early` or not.
  const auto leader_before = ca.exec_time();
  CHECK(a.MayCollect(ca, t0 + 20600ms, Clock::now() + 5s, 500ms));
  CHECK(ca.exec_time() == leader_before);
}

}  // namespace
}  // namespace pgvigil
