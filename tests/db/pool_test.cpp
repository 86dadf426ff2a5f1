// Pool against real servers; an injected clock drives lifetime, idle, validation and backoff.
#include "db/pool.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "support/pg_server.hpp"
#include "support/url_params.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::PgBouncer;
using test::PgServer;
using test::PgServerOptions;

struct FakeClock {
  SteadyTime now = Clock::now();
  Pool::Clock fn() {
    return [this] { return now; };
  }
};

SteadyTime Deadline() { return Clock::now() + 5s; }

TEST_CASE("Pool: reuses an idle connection, counts, reports stats [live]", "[db][pool][live]") {
  PgServer pg;
  PoolSettings s;
  s.size = 2;
  Pool pool(s, test::UrlParams(pg.Url()), Millis(5000));
  auto a = pool.Acquire(Deadline());
  REQUIRE(a.has_value());
  CHECK(a->info().new_connection);
  CHECK(a->info().connect_duration > 0ns);
  int pid = a->conn().backend_pid();
  CHECK(a->conn().Exec("SELECT pg_sleep(0.05)", Deadline()).has_value());
  CHECK(a->conn().exec_time() >= 50ms);  // client-side statement time
  PoolStats st = pool.Stats();
  CHECK(st.exec_seconds_total >= 0.05);
  CHECK(st.max_size == 2);
  CHECK(st.open == 1);
  CHECK(st.busy == 1);
  CHECK(st.idle == 0);
  pool.Release(std::move(*a));
  st = pool.Stats();
  CHECK(st.idle == 1);
  CHECK(st.busy == 0);

  auto b = pool.Acquire(Deadline());
  REQUIRE(b.has_value());
  CHECK_FALSE(b->info().new_connection);
  CHECK(b->conn().backend_pid() == pid);
  // A second lease while the first is out opens the second slot.
  auto c = pool.Acquire(Deadline());
  REQUIRE(c.has_value());
  CHECK(c->info().new_connection);
  // Size 2: a third is refused without blocking.
  auto d = pool.Acquire(Deadline());
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error().message.find("exhausted") != std::string::npos);
  pool.Release(std::move(*b));
  pool.Release(std::move(*c));
  CHECK(pool.Stats().opened_total == 2);
  CHECK(pool.Stats().open == 2);

  pool.CloseAll();
  st = pool.Stats();
  CHECK(st.open == 0);
  CHECK(st.closed_total["shutdown"] == 2);
  CHECK(st.exec_seconds_total >= 0.05);  // closed connections keep counting
}

TEST_CASE("Pool: a terminated backend is discarded and replaced [live]", "[db][pool][live]") {
  PgServer pg;
  Pool pool(PoolSettings{}, test::UrlParams(pg.Url()), Millis(5000));
  auto a = pool.Acquire(Deadline());
  REQUIRE(a.has_value());
  pg.Psql("SELECT pg_terminate_backend(" + std::to_string(a->conn().backend_pid()) + ")");
  auto r = a->conn().Exec("SELECT 1", Deadline());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().ConnectionLost());
  pool.Release(std::move(*a));
  PoolStats st = pool.Stats();
  CHECK(st.open == 0);
  CHECK(st.closed_total["broken"] == 1);

  auto b = pool.Acquire(Deadline());
  REQUIRE(b.has_value());
  CHECK(b->info().new_connection);
  CHECK(b->conn().Exec("SELECT 1", Deadline()).has_value());
  pool.Release(std::move(*b));
  CHECK(pool.Stats().opened_total == 2);
}

TEST_CASE("Pool: idle close, lifetime with jitter, validation of idle connections [live]",
          "[db][pool][live]") {
  PgServer pg;
  PoolSettings s;
  s.max_lifetime = Millis(100'000);
  s.idle_timeout = Millis(20'000);
  s.validate_after = Millis(5'000);
  FakeClock clock;  // each block below gets its own pool; the clock only moves forward

  auto use = [&](Pool& pool) {
    auto l = pool.Acquire(Deadline());
    REQUIRE(l.has_value());
    bool fresh = l->info().new_connection;
    REQUIRE(l->conn().Exec("SELECT 1", Deadline()).has_value());
    pool.Release(std::move(*l));
    return fresh;
  };

  {
    INFO("idle close");
    Pool pool(s, test::UrlParams(pg.Url()), Millis(5000), clock.fn());
    CHECK(use(pool));
    clock.now += 19s;
    pool.Maintain();
    CHECK(pool.Stats().open == 1);
    clock.now += 1s;
    pool.Maintain();
    CHECK(pool.Stats().open == 0);
    CHECK(pool.Stats().closed_total["idle"] == 1);
    CHECK(use(pool));
  }
  {
    INFO("lifetime is jittered within [90%, 100%] of max_lifetime");
    Pool pool(s, test::UrlParams(pg.Url()), Millis(5000), clock.fn());
    CHECK(use(pool));
    for (int i = 0; i < 8; ++i) {  // kept busy: never idle, 88s old
      clock.now += 11s;
      CHECK_FALSE(use(pool));
    }
    pool.Maintain();
    CHECK(pool.Stats().open == 1);
    clock.now += 12s + 1ms;  // 100.001s: past any jittered lifetime
    pool.Maintain();
    CHECK(pool.Stats().open == 0);
    CHECK(pool.Stats().closed_total["lifetime"] == 1);
    CHECK(use(pool));
    CHECK(pool.Stats().opened_total == 2);
  }
  {
    INFO("a connection that died while idle is caught by validation");
    Pool pool(s, test::UrlParams(pg.Url()), Millis(5000), clock.fn());
    auto l = pool.Acquire(Deadline());
    REQUIRE(l.has_value());
    int pid = l->conn().backend_pid();
    pool.Release(std::move(*l));
    pg.Psql("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    clock.now += 6s;  // past validate_after
    auto m = pool.Acquire(Deadline());
    REQUIRE(m.has_value());
    CHECK(m->info().new_connection);
    CHECK(m->conn().backend_pid() != pid);
    pool.Release(std::move(*m));
    CHECK(pool.Stats().closed_total["broken"] == 1);
  }
}

TEST_CASE("Pool: backs off after a failed connect without touching the network [live]",
          "[db][pool][live]") {
  PgServerOptions opts;
  opts.start = false;
  PgServer pg(opts);
  FakeClock clock;
  PoolSettings s;
  s.backoff_initial = Millis(500);
  s.backoff_max = Millis(4000);
  Pool pool(s, test::UrlParams(pg.Url()), Millis(2000), clock.fn());

  auto first = pool.Acquire(Deadline());
  REQUIRE_FALSE(first.has_value());
  CHECK(first.error().kind == ErrorKind::kRefused);
  PoolStats st = pool.Stats();
  CHECK(st.connect_errors_total["refused"] == 1);
  CHECK(st.backing_off);
  REQUIRE(st.last_connect_error.has_value());
  CHECK(pool.NextConnectAllowed() > clock.now);
  CHECK(pool.NextConnectAllowed() <= clock.now + 500ms);

  pg.Start();  // the server is back, but we are still backing off
  auto t0 = Clock::now();
  auto second = pool.Acquire(Deadline());
  CHECK(Clock::now() - t0 < 50ms);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().kind == ErrorKind::kRefused);
  CHECK(pool.Stats().connect_errors_total["refused"] == 1);  // no new attempt
  CHECK(pool.Stats().opened_total == 0);

  clock.now = pool.NextConnectAllowed();
  auto third = pool.Acquire(Deadline());
  REQUIRE(third.has_value());
  pool.Release(std::move(*third));
  st = pool.Stats();
  CHECK_FALSE(st.backing_off);
  CHECK(st.opened_total == 1);
  CHECK(pool.NextConnectAllowed() == clock.now);
}

TEST_CASE("Pool: a misconfiguration retries at the slow pace [live]", "[db][pool][live]") {
  PgServer pg;
  FakeClock clock;
  PoolSettings s;
  s.misconfigured_backoff = Millis(60'000);
  Pool pool(s, test::UrlParams(pg.UrlWithPassword("wrong")), Millis(2000), clock.fn());
  auto first = pool.Acquire(Deadline());
  REQUIRE_FALSE(first.has_value());
  CHECK(first.error().kind == ErrorKind::kAuth);
  CHECK(pool.NextConnectAllowed() == clock.now + 60s);
  clock.now += 59s;
  auto second = pool.Acquire(Deadline());
  REQUIRE_FALSE(second.has_value());
  CHECK(pool.Stats().connect_errors_total["auth"] == 1);
  clock.now += 1s;
  auto third = pool.Acquire(Deadline());
  REQUIRE_FALSE(third.has_value());
  CHECK(pool.Stats().connect_errors_total["auth"] == 2);
  CHECK(pool.Stats().last_connect_error->find("wrong") == std::string::npos);

  pool.CloseAll();  // resets the backoff
  CHECK(pool.NextConnectAllowed() == clock.now);
  CHECK_FALSE(pool.Stats().backing_off);
}

TEST_CASE("Pool: through PgBouncer in transaction mode [live]", "[db][pool][live]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  FakeClock clock;
  PoolSettings s;
  s.validate_after = Millis(0);  // validate on every Acquire: the empty query must pass too
  Pool pool(s, test::UrlParams(bouncer.Url()), Millis(5000), clock.fn());
  for (int i = 0; i < 20; ++i) {
    clock.now += 1ms;
    auto l = pool.Acquire(Deadline());
    REQUIRE(l.has_value());
    auto r = l->conn().Exec("SELECT 1", Deadline());
    REQUIRE(r.has_value());
    CHECK(r->Int(0, 0) == 1);
    auto p = l->conn().Exec("SELECT $1::int * 2", {std::to_string(i)}, Deadline());
    REQUIRE(p.has_value());
    CHECK(p->Int(0, 0) == 2 * i);
    pool.Release(std::move(*l));
  }
  CHECK(pool.Stats().opened_total == 1);
}

}  // namespace
}  // namespace pgvigil

namespace pgvigil {
namespace {

TEST_CASE("Pool: a lease returns itself when destroyed; broken when an exception unwinds it",
          "[db][pool][live]") {
  test::PgServer pg;
  PoolSettings s;
  s.size = 1;
  Pool pool(s, test::UrlParams(pg.Url()), Millis(5000));
  int pid = 0;
  {
    auto a = pool.Acquire(Deadline());
    REQUIRE(a.has_value());
    pid = a->conn().backend_pid();
    CHECK(pool.Stats().busy == 1);
  }
  CHECK(pool.Stats().busy == 0);
  CHECK(pool.Stats().idle == 1);
  {
    auto b = pool.Acquire(Deadline());
    REQUIRE(b.has_value());
    CHECK(b->conn().backend_pid() == pid);  // the same session came back
    Pool::Lease moved = std::move(*b);
    b->Return();  // a moved-from lease gives nothing back
    CHECK(pool.Stats().busy == 1);
  }
  CHECK(pool.Stats().idle == 1);
  try {
    auto c = pool.Acquire(Deadline());
    REQUIRE(c.has_value());
    throw std::runtime_error("a job failed halfway");
  } catch (const std::runtime_error&) {
  }
  const PoolStats st = pool.Stats();
  CHECK(st.open == 0);  // its session was in an unknown state: discarded
  CHECK(st.closed_total.at("broken") == 1);
}

}  // namespace
}  // namespace pgvigil
