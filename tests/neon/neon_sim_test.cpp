// Live tests of the Neon simulator (tests/support/neon_sim) together with pgvigil's NeonApi and
// error classification: a real PostgreSQL behind the simulated proxy and control plane.
#include "support/neon_sim.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "db/connection.hpp"
#include "neon/neon_api.hpp"
#include "support/pg_server.hpp"
#include "support/url_params.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

ConnParams SimParams(const std::string& url, const std::string& sslmode = "disable") {
  ConnParams p = test::UrlParams(url);
  p.Set("sslmode", sslmode);
  p.Set("application_name", "neon_sim_test");
  return p;
}

NeonApiOptions ApiOptions(const test::NeonSim& sim) {
  NeonApiOptions o;
  o.api_url = *ParseNeonApiUrl(sim.ApiUrl());
  o.api_key = sim.options().api_key;
  o.project_id = sim.options().project_id;
  o.endpoint_id = sim.options().endpoint_id;
  o.connect_timeout = 2000ms;
  o.read_timeout = 2000ms;
  return o;
}

ComputeStateKind ApiState(const test::NeonSim& sim) {
  auto r = NeonApi(ApiOptions(sim)).GetEndpoint();
  REQUIRE(r.has_value());
  return r->state;
}

// A database other than `postgres`: Neon's rule counts its pg_stat_database activity.
void CreateAppDb(test::PgServer& server) { server.Psql("CREATE DATABASE app"); }

TEST_CASE("neon sim: an idle session does not keep the compute awake; it gets 57P01",
          "[neon][live][sim]") {
  test::PgServer server;
  CreateAppDb(server);
  test::NeonSimOptions o;
  o.suspend_timeout = 1500ms;
  o.monitor_interval = 100ms;
  o.cold_start_delay = 600ms;
  test::NeonSim sim(server, o);
  REQUIRE(sim.compute_state() == "active");
  CHECK(ApiState(sim) == ComputeStateKind::kActive);

  auto c = Connection::Open(SimParams(sim.Url("app")), Clock::now() + 5s);
  REQUIRE(c.has_value());
  REQUIRE(c->Exec("SELECT 12345 AS marker", Clock::now() + 5s).has_value());
  for (int i = 0; i < 3; ++i) {  // a few more sessions, so the counter has something to lose
    auto extra = Connection::Open(SimParams(sim.Url("app")), Clock::now() + 5s);
    REQUIRE(extra.has_value());
  }
  const auto last_query = Clock::now();
  REQUIRE(sim.WaitForState("idle", 10s));
  const auto slept_after = Clock::now() - last_query;
  CHECK(slept_after >= 1400ms);
  CHECK(slept_after <= 1500ms + 3s);  // suspend_timeout + stats flush + monitor looks
  CHECK_FALSE(server.running());
  CHECK(sim.suspends() == 1);
  CHECK(ApiState(sim) == ComputeStateKind::kIdle);

  // The idle session was ended by the fast shutdown, as Neon's suspend ends it.
  auto after = c->Exec("SELECT 1", Clock::now() + 5s);
  REQUIRE_FALSE(after.has_value());
  CHECK(after.error().kind == ErrorKind::kAdminShutdown);
  CHECK(after.error().sqlstate == "57P01");

  // A wrong password is refused by the proxy and wakes nothing.
  auto bad = SimParams(sim.Url("app"));
  bad.Set("password", "not-the-password");
  auto refused = Connection::Open(bad, Clock::now() + 5s);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::kAuth);
  CHECK(sim.auth_failures() == 1);
  std::this_thread::sleep_for(300ms);
  CHECK(sim.compute_state() == "idle");
  CHECK(sim.cold_starts() == 0);

  // The right one wakes it, after the cold start, with empty statistics.
  auto begin = Clock::now();
  auto woke = Connection::Open(SimParams(sim.Url("app")), Clock::now() + 15s);
  auto took = Clock::now() - begin;
  REQUIRE(woke.has_value());
  CHECK(took >= 600ms);
  CHECK(sim.compute_state() == "active");
  CHECK(sim.cold_starts() == 1);
  CHECK(sim.wakes_by("neon_sim_test") == 1);
  REQUIRE(sim.last_cold_start());
  CHECK(*sim.last_cold_start() >= 600ms);
  // Only this session since the start; the marker statement is gone.
  CHECK(server.Psql("SELECT sessions FROM pg_stat_database WHERE datname = 'app'") == "1");
  CHECK(server.Psql("SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%marker%' "
                    "AND query NOT LIKE '%pg_stat_statements%'") == "0");
  auto ops = sim.transitions();
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].action == "suspend_compute");
  CHECK(ops[0].cause == "suspend_timeout");
  CHECK(ops[1].action == "start_compute");
  CHECK_THAT(ops[1].cause, Catch::Contains("application=neon_sim_test"));
}

TEST_CASE("neon sim: the activity rule (cloud_admin agent, idle in transaction, queries)",
          "[neon][live][sim]") {
  test::PgServer server;
  CreateAppDb(server);
  test::NeonSimOptions o;
  o.suspend_timeout = 1500ms;
  o.monitor_interval = 100ms;
  o.agent_interval = 300ms;  // Neon's own exporter, as cloud_admin on `postgres`
  test::NeonSim sim(server, o);

  auto c = Connection::Open(SimParams(sim.Url("app")), Clock::now() + 5s);
  REQUIRE(c.has_value());
  // Idle in transaction counts as activity, however long it lasts.
  REQUIRE(c->Exec("BEGIN", Clock::now() + 5s).has_value());
  std::this_thread::sleep_for(3s);
  CHECK(sim.compute_state() == "active");
  REQUIRE(c->Exec("COMMIT", Clock::now() + 5s).has_value());
  // Queries every 500 ms keep it awake.
  auto quiet_since = Clock::now();
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(500ms);
    REQUIRE(c->Exec("SELECT 1", Clock::now() + 5s).has_value());
    quiet_since = Clock::now();
  }
  CHECK(sim.compute_state() == "active");
  CHECK(sim.suspends() == 0);
  // Then only the internal agent: it suspends anyway, with our idle session still open.
  REQUIRE(sim.WaitForState("idle", 10s));
  CHECK(Clock::now() - quiet_since >= 1400ms);
  CHECK(sim.agent_scrapes() >= 3);
  const auto api_last_active = sim.last_active();
  CHECK(std::chrono::system_clock::now() - api_last_active >= 1400ms);
}

TEST_CASE("neon sim API: states, key, ids, rate limits", "[neon][live][sim]") {
  test::PgServer server;
  test::NeonSimOptions o;
  o.suspend_timeout = 0ms;  // only SuspendNow()
  o.cold_start_delay = 1500ms;
  test::NeonSim sim(server, o);

  auto r = NeonApi(ApiOptions(sim)).GetEndpoint();
  REQUIRE(r.has_value());
  CHECK(r->state == ComputeStateKind::kActive);
  CHECK(r->suspend_timeout_seconds == -1);  // never suspends on its own
  REQUIRE(r->last_active);
  CHECK(std::chrono::abs(*r->last_active - std::chrono::system_clock::now()) < 10s);
  CHECK(sim.api_requests() == 1);

  {  // init while starting, then active
    sim.SuspendNow();
    REQUIRE(sim.compute_state() == "idle");
    CHECK(ApiState(sim) == ComputeStateKind::kIdle);
    bool client_ok = false;  // checked after join: Catch2's macros are not thread-safe
    std::thread client([&] {
      client_ok = Connection::Open(SimParams(sim.Url()), Clock::now() + 15s).has_value();
    });
    bool saw_init = false;
    for (int i = 0; i < 50 && !saw_init; ++i) {
      saw_init = ApiState(sim) == ComputeStateKind::kInit;
      if (!saw_init) std::this_thread::sleep_for(50ms);
    }
    client.join();
    CHECK(client_ok);
    CHECK(saw_init);
    CHECK(ApiState(sim) == ComputeStateKind::kActive);
  }
  {  // a wrong key is unauthorized and never shows up in the error
    auto opts = ApiOptions(sim);
    opts.api_key = "napi_wrong_key_987654321";
    auto bad = NeonApi(opts).GetEndpoint();
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == ApiErrorKind::kUnauthorized);
    CHECK(bad.error().http_status == 401);
    CHECK_THAT(bad.error().message, Catch::Contains("NEON_API_KEY"));
    CHECK_THAT(bad.error().message, !Catch::Contains(opts.api_key));
    CHECK_THAT(bad.error().message, !Catch::Contains(sim.options().api_key));
  }
  {  // the API host by name: looked up under the deadline, every address tried (/etc/hosts may
     // list ::1 first, where the simulator does not listen)
    auto opts = ApiOptions(sim);
    REQUIRE(opts.api_url.host == "127.0.0.1");
    opts.api_url.host = "localhost";
    NeonApi by_name(opts);
    for (int i = 0; i < 3; ++i) {
      auto reply = by_name.GetEndpoint();
      INFO((reply ? std::string() : reply.error().message));
      CHECK(reply.has_value());
    }
    opts.api_url = *ParseNeonApiUrl("http://pgvigil-no-such-host.invalid/api/v2");
    auto nx = NeonApi(opts).GetEndpoint();
    REQUIRE_FALSE(nx.has_value());
    CHECK(nx.error().kind == ApiErrorKind::kNetwork);
    CHECK_THAT(nx.error().message, Catch::Contains("pgvigil-no-such-host.invalid") &&
                                       Catch::Contains("does not resolve"));
  }
  {  // a wrong endpoint id is not_found
    auto opts = ApiOptions(sim);
    opts.endpoint_id = "ep-nope";
    auto nf = NeonApi(opts).GetEndpoint();
    REQUIRE_FALSE(nf.has_value());
    CHECK(nf.error().kind == ApiErrorKind::kNotFound);
  }
  {  // 429 with Retry-After, then a forced 500
    sim.SetApiRateLimited(true, 7);
    auto rl = NeonApi(ApiOptions(sim)).GetEndpoint();
    REQUIRE_FALSE(rl.has_value());
    CHECK(rl.error().kind == ApiErrorKind::kRateLimited);
    CHECK(rl.error().retry_after == Millis(7000));
    sim.SetApiRateLimited(false);
    sim.SetApiStatus(500);
    auto se = NeonApi(ApiOptions(sim)).GetEndpoint();
    REQUIRE_FALSE(se.has_value());
    CHECK(se.error().kind == ApiErrorKind::kServer);
    sim.SetApiStatus(0);
    CHECK(NeonApi(ApiOptions(sim)).GetEndpoint().has_value());
  }
  {  // no server at the API URL is a network error, within the deadline
    auto opts = ApiOptions(sim);
    opts.api_url =
        *ParseNeonApiUrl("http://127.0.0.1:" + std::to_string(test::FreeTcpPort()) + "/api/v2");
    auto begin = Clock::now();
    auto ne = NeonApi(opts).GetEndpoint();
    CHECK(Clock::now() - begin < 5s);
    REQUIRE_FALSE(ne.has_value());
    CHECK(ne.error().kind == ApiErrorKind::kNetwork);
    CHECK_THAT(ne.error().message, !Catch::Contains(opts.api_key));
  }
}

TEST_CASE("neon sim: Neon's proxy errors reach libpq and are classified", "[neon][live][sim]") {
  test::PgServer server;
  test::NeonSimOptions o;
  o.suspend_timeout = 0ms;
  test::NeonSim sim(server, o);
  struct Case {
    const char* text;
    ErrorKind kind;
  };
  const Case cases[] = {
      {test::kNeonWakingError, ErrorKind::kNeonWaking},
      {test::kNeonDisabledError, ErrorKind::kNeonDisabled},
      {test::kNeonNotFoundError, ErrorKind::kNeonNotFound},
      {test::kNeonQuotaError, ErrorKind::kNeonQuota},
      {test::kNeonSniError, ErrorKind::kNeonSni},
      {test::kNeonTooManyAttemptsError, ErrorKind::kTooManyConnections},
  };
  for (const char* sslmode : {"disable", "prefer"}) {
    for (const auto& c : cases) {
      INFO("sslmode=" << sslmode << " text: " << c.text);
      sim.RefuseWith(c.text);
      auto r = Connection::Open(SimParams(sim.Url(), sslmode), Clock::now() + 5s);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == c.kind);
      CHECK_THAT(r.error().message, Catch::Contains(c.text));
      CHECK_THAT(r.error().message, !Catch::Contains(test::kPassword));
    }
  }
  CHECK(ErrorKindName(ErrorKind::kNeonWaking) == "neon_waking");
  sim.StopRefusing();
  auto ok = Connection::Open(SimParams(sim.Url(), "prefer"), Clock::now() + 5s);
  REQUIRE(ok.has_value());
  CHECK(ok->Exec("SELECT 1", Clock::now() + 5s).has_value());
}

}  // namespace
}  // namespace pgvigil
