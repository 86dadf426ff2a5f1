#include "neon/suspend_policy.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

// Injected time: T(s) is `s` seconds after a fixed origin, on both clocks.
PolicyTime T(double s) {
  auto d = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
  return {std::chrono::steady_clock::time_point{} + std::chrono::hours(1000) + d,
          std::chrono::system_clock::from_time_t(1'700'000'000) +
              std::chrono::duration_cast<std::chrono::system_clock::duration>(d)};
}

ComputeState Api(ComputeStateKind k, std::optional<double> last_active_s = std::nullopt,
                 std::optional<long long> suspend_timeout = 300) {
  ComputeState cs;
  cs.state = k;
  cs.raw_state = std::string(ComputeStateName(k));
  cs.suspend_timeout_seconds = suspend_timeout;
  if (last_active_s) cs.last_active = T(*last_active_s).wall;
  return cs;
}

SuspendPolicyOptions Opts(bool api = true) {
  SuspendPolicyOptions o;
  o.suspend_after = 60s;
  o.api_poll_interval = 30s;
  o.wake_timeout = 15s;
  o.api_available = api;
  o.last_active_slack = 5s;
  return o;
}

constexpr auto kActive = ComputeStateKind::kActive;
constexpr auto kIdle = ComputeStateKind::kIdle;
constexpr auto kInit = ComputeStateKind::kInit;

// Probes every 10s without foreign activity from `from` to `to`; returns the last decision.
Decision QuietProbes(SuspendPolicy& p, double from, double to) {
  Decision d = p.Current();
  for (double t = from; t <= to; t += 10) d = p.OnProbe(T(t), true, false);
  return d;
}

TEST_CASE("starts active and probing", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  auto d = p.Current();
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probing);
  CHECK_FALSE(d.close_pool);
  CHECK(d.count_failures);
  REQUIRE(d.next_api_poll);
  CHECK(*d.next_api_poll == T(0).steady);
  CHECK(PolicyStateName(PolicyState::kGoingIdle) == "going_idle");
}

TEST_CASE("allow_suspend: suspend_after of quiet stops probing and closes the pool once",
          "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  auto d = QuietProbes(p, 10, 50);
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probing);
  d = p.OnProbe(T(60), true, false);
  CHECK(d.state == PolicyState::kGoingIdle);
  CHECK_FALSE(d.probing);
  CHECK(d.close_pool);
  CHECK_THAT(d.reason, Catch::Contains("1m"));
  // close_pool is one-shot.
  CHECK_FALSE(p.Tick(T(61)).close_pool);
  CHECK_FALSE(p.Current().probing);
}

TEST_CASE("foreign activity restarts the quiet timer", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 40);
  auto d = p.OnProbe(T(50), true, true, "1 other session(s) running queries");
  CHECK(d.state == PolicyState::kActive);
  CHECK_THAT(d.reason, Catch::Contains("other session"));
  d = QuietProbes(p, 60, 100);
  CHECK(d.state == PolicyState::kActive);
  d = p.OnProbe(T(110), true, false);
  CHECK(d.state == PolicyState::kGoingIdle);
}

TEST_CASE("failed probes never trigger the suspend", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  Decision d;
  for (double t = 10; t <= 300; t += 10) d = p.OnProbe(T(t), false, false);
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probing);
  // The first successful probe after the quiet period does.
  CHECK(p.OnProbe(T(310), true, false).state == PolicyState::kGoingIdle);
}

TEST_CASE("going_idle does not reconnect while Neon's own timer counts down", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kGoingIdle);
  // The API still says active, last_active is our own last query: stay away.
  for (double t = 70; t < 360; t += 30) {
    auto d = p.OnApiState(T(t), Api(kActive, 60));
    CHECK(d.state == PolicyState::kGoingIdle);
    CHECK_FALSE(d.probing);
    CHECK_FALSE(d.probe_now);
    REQUIRE(d.next_api_poll);
    CHECK(*d.next_api_poll == T(t + 30).steady);
  }
  // last_active within the slack (clock skew) is still ours.
  CHECK(p.OnApiState(T(365), Api(kActive, 64)).state == PolicyState::kGoingIdle);
  // Neon suspends: idle (healthy).
  auto d = p.OnApiState(T(370), Api(kIdle, 60));
  CHECK(d.state == PolicyState::kIdle);
  CHECK_FALSE(d.probing);
  CHECK_THAT(d.reason, Catch::Contains("suspended"));
  CHECK(p.last_compute_state() == kIdle);
}

TEST_CASE("going_idle resumes at once when somebody else used the compute", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kGoingIdle);
  auto d = p.OnApiState(T(120), Api(kActive, 100));
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probing);
  CHECK(d.probe_now);
  CHECK_FALSE(d.close_pool);
  CHECK_THAT(d.reason, Catch::Contains("another client"));
  // The quiet timer restarted at the resume.
  CHECK(QuietProbes(p, 130, 170).state == PolicyState::kActive);
  CHECK(p.OnProbe(T(180), true, false).state == PolicyState::kGoingIdle);
}

TEST_CASE("an endpoint that never suspends is probed continuously", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kGoingIdle);
  auto d = p.OnApiState(T(70), Api(kActive, 60, -1));
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probe_now);
  CHECK_THAT(d.reason, Catch::Contains("never suspends"));
  CHECK(QuietProbes(p, 80, 600).state == PolicyState::kActive);
}

TEST_CASE("idle -> waking on an idle->active/init transition: the app woke it, not pgvigil",
          "[neon][policy]") {
  for (auto woke : {kActive, kInit}) {
    SuspendPolicy p(Opts(), T(0));
    QuietProbes(p, 10, 60);
    p.OnApiState(T(300), Api(kIdle, 60));
    REQUIRE(p.state() == PolicyState::kIdle);
    // Still idle: nothing happens, even when last_active moved (it went back to sleep).
    CHECK(p.OnApiState(T(330), Api(kIdle, 320)).state == PolicyState::kIdle);
    auto d = p.OnApiState(T(360), Api(woke, 355));
    CHECK(d.state == PolicyState::kWaking);
    CHECK(d.probing);
    CHECK(d.probe_now);
    CHECK_FALSE(d.count_failures);
    d = p.OnConnectResult(T(361.5), true, 1500ms);
    CHECK(d.state == PolicyState::kActive);
    CHECK(d.count_failures);
    // The app woke it (the API showed it awake or starting first): not pgvigil's cold start
    // nor its wake; the wake is counted by="other" from the API's transitions.
    CHECK_FALSE(d.cold_start);
    CHECK_FALSE(d.wake);
    if (woke == kInit) {
      d = p.OnApiState(T(390), Api(kActive, 385));
      REQUIRE(d.wake);
      CHECK(d.wake->by == "other");
    }
    CHECK_FALSE(p.Current().cold_start);  // one-shot
  }
}

TEST_CASE("waking: failures are not failures until wake_timeout", "[neon][policy]") {
  SuspendPolicy p(Opts(false), T(0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kIdle);
  auto d = p.OnWakeRequest(T(100));
  CHECK(d.state == PolicyState::kWaking);
  d = p.OnConnectResult(T(105), false, 5s);
  CHECK(d.state == PolicyState::kWaking);
  CHECK_FALSE(d.count_failures);
  d = p.OnProbe(T(110), false, false);
  CHECK(d.state == PolicyState::kWaking);
  CHECK_FALSE(d.count_failures);
  d = p.Tick(T(114.9));
  CHECK(d.state == PolicyState::kWaking);
  d = p.Tick(T(115));
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.count_failures);
  CHECK(d.probing);
  CHECK_THAT(d.reason, Catch::Contains("neon.wake_timeout"));
}

TEST_CASE("waking: a slow but successful cold start", "[neon][policy]") {
  SuspendPolicy p(Opts(false), T(0));
  QuietProbes(p, 10, 60);
  p.OnWakeRequest(T(100));
  auto d = p.OnConnectResult(T(108), true, 8s);
  CHECK(d.state == PolicyState::kActive);
  REQUIRE(d.cold_start);
  CHECK(*d.cold_start == 8s);
  // A successful probe in waking (connection reused) also ends it.
  SuspendPolicy q(Opts(false), T(0));
  QuietProbes(q, 10, 60);
  q.OnWakeRequest(T(100));
  CHECK(q.OnProbe(T(101), true, false).state == PolicyState::kActive);
}

TEST_CASE("without an API: idle right away, wakes only on request or wake_check_interval",
          "[neon][policy]") {
  auto o = Opts(false);
  SECTION("no wake_check_interval: stays idle") {
    SuspendPolicy p(o, T(0));
    auto d = QuietProbes(p, 10, 60);
    CHECK(d.state == PolicyState::kIdle);
    CHECK(d.close_pool);
    CHECK_FALSE(d.next_api_poll);
    CHECK_THAT(d.reason, Catch::Contains("POST /wake"));
    CHECK(p.Tick(T(100'000)).state == PolicyState::kIdle);
    d = p.OnWakeRequest(T(100'001));
    CHECK(d.state == PolicyState::kWaking);
    CHECK(d.probe_now);
  }
  SECTION("wake_check_interval") {
    o.wake_check_interval = 600s;
    SuspendPolicy p(o, T(0));
    QuietProbes(p, 10, 60);
    CHECK(p.Tick(T(659)).state == PolicyState::kIdle);
    auto d = p.Tick(T(660));
    CHECK(d.state == PolicyState::kWaking);
    CHECK(d.probe_now);
    d = p.OnConnectResult(T(661), true, 900ms);
    REQUIRE(d.cold_start);
    CHECK(d.state == PolicyState::kActive);
    // Back to sleep after another quiet period, and the next check is an interval later.
    CHECK(QuietProbes(p, 671, 721).state == PolicyState::kIdle);
    CHECK(p.Tick(T(721 + 599)).state == PolicyState::kIdle);
    CHECK(p.Tick(T(721 + 600)).state == PolicyState::kWaking);
  }
}

TEST_CASE("an unusable API falls back to the no-API behaviour", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kGoingIdle);
  // Transient errors change nothing.
  CHECK(p.OnApiError(T(70), ApiError{ApiErrorKind::kServer, 500, {}, "x"}).state ==
        PolicyState::kGoingIdle);
  CHECK(p.api_usable());
  auto d = p.OnApiError(T(100), ApiError{ApiErrorKind::kUnauthorized, 401, {}, "x"});
  CHECK(d.state == PolicyState::kIdle);
  CHECK_FALSE(p.api_usable());
  CHECK_THAT(d.reason, Catch::Contains("unauthorized"));
  // Still polled (slowly, by the pacer) so a fixed key recovers.
  REQUIRE(d.next_api_poll);
  d = p.OnApiState(T(400), Api(kActive, 390));
  CHECK(p.api_usable());
  CHECK(d.state == PolicyState::kWaking);
}

TEST_CASE("POST /wake in each state", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  auto d = p.OnWakeRequest(T(1));
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probe_now);
  QuietProbes(p, 10, 60);
  REQUIRE(p.state() == PolicyState::kGoingIdle);
  d = p.OnWakeRequest(T(70));
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probe_now);
  CHECK(QuietProbes(p, 80, 120).state == PolicyState::kActive);
  CHECK(p.OnProbe(T(130), true, false).state == PolicyState::kGoingIdle);
  p.OnApiState(T(400), Api(kIdle, 130));
  d = p.OnWakeRequest(T(500));
  CHECK(d.state == PolicyState::kWaking);
  CHECK(p.OnWakeRequest(T(501)).probe_now);
}

TEST_CASE("a probe already under way while going idle changes nothing", "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  QuietProbes(p, 10, 60);
  auto d = p.OnProbe(T(61), true, true);
  CHECK(d.state == PolicyState::kGoingIdle);
  CHECK_FALSE(d.probing);
  // But our own last query time moved: last_active at 61 is not foreign.
  CHECK(p.OnApiState(T(90), Api(kActive, 62)).state == PolicyState::kGoingIdle);
}

TEST_CASE("keep_awake always probes", "[neon][policy]") {
  auto o = Opts();
  o.idle_policy = IdlePolicy::kKeepAwake;
  SuspendPolicy p(o, T(0));
  auto d = QuietProbes(p, 10, 3600);
  CHECK(d.state == PolicyState::kActive);
  CHECK(d.probing);
  CHECK_FALSE(d.close_pool);
  CHECK_THAT(d.reason, Catch::Contains("keep_awake"));
  CHECK(p.OnApiState(T(3700), Api(kIdle)).state == PolicyState::kActive);
  CHECK(p.OnApiError(T(3701), ApiError{ApiErrorKind::kUnauthorized, 401, {}, "x"}).probing);
  CHECK(p.Tick(T(99'999)).probing);
  CHECK(p.OnWakeRequest(T(100'000)).probe_now);
  REQUIRE(p.Current().next_api_poll);  // still polled for /health
}

TEST_CASE("Options come from NeonSettings", "[neon][policy]") {
  NeonSettings s;
  s.suspend_after = 90s;
  s.idle_policy = IdlePolicy::kKeepAwake;
  s.wake_check_interval = 10min;
  auto o = SuspendPolicyOptions::From(s, true);
  CHECK(o.suspend_after == 90s);
  CHECK(o.idle_policy == IdlePolicy::kKeepAwake);
  CHECK(o.wake_check_interval == Millis(600'000));
  CHECK(o.api_available);
  CHECK(o.wake_timeout == s.wake_timeout);
}

TEST_CASE("a session ended with 57P01 is expected: no failure, no wake-up", "[neon][policy]") {
  SECTION("allow_suspend with the API: going_idle, the pool closed, Neon's API decides") {
    SuspendPolicy p(Opts(true), T(0));
    auto d = p.OnSessionTerminated(T(10), "SQLSTATE 57P01");
    CHECK(d.state == PolicyState::kGoingIdle);
    CHECK_FALSE(d.probing);
    CHECK(d.close_pool);
    CHECK_FALSE(d.count_failures);
    CHECK_THAT(d.reason, Catch::Contains("57P01") && Catch::Contains("suspended or restarted"));
    // Asleep: idle. A restart the app keeps using: back to probing.
    CHECK(p.OnApiState(T(20), Api(kIdle)).state == PolicyState::kIdle);
    SuspendPolicy q(Opts(true), T(0));
    q.OnProbe(T(5), true, false);
    q.OnSessionTerminated(T(10), "SQLSTATE 57P01");
    d = q.OnApiState(T(20), Api(kActive, 19));
    CHECK(d.state == PolicyState::kActive);
    CHECK(d.probe_now);
  }
  SECTION("allow_suspend without the API: idle until POST /wake") {
    SuspendPolicy p(Opts(false), T(0));
    auto d = p.OnSessionTerminated(T(10), "SQLSTATE 57P01");
    CHECK(d.state == PolicyState::kIdle);
    CHECK_FALSE(d.probing);
    CHECK(d.close_pool);
    CHECK_FALSE(d.count_failures);
    CHECK(p.Tick(T(1000)).state == PolicyState::kIdle);
    // Already asleep: nothing changes.
    d = p.OnSessionTerminated(T(20), "SQLSTATE 57P01");
    CHECK(d.state == PolicyState::kIdle);
    CHECK_FALSE(d.close_pool);
  }
  SECTION("keep_awake: reconnect at once, measured as a cold start, failures wait") {
    auto o = Opts(true);
    o.idle_policy = IdlePolicy::kKeepAwake;
    SuspendPolicy p(o, T(0));
    auto d = p.OnSessionTerminated(T(10), "SQLSTATE 57P01");
    CHECK(d.state == PolicyState::kWaking);
    CHECK(d.probing);
    CHECK(d.probe_now);
    CHECK(d.close_pool);
    CHECK_FALSE(d.count_failures);
    CHECK_THAT(d.reason, Catch::Contains("keep_awake"));
    d = p.OnConnectResult(T(11), true, 900ms);
    CHECK(d.state == PolicyState::kActive);
    REQUIRE(d.cold_start);
    CHECK(*d.cold_start == 900ms);
    CHECK(d.count_failures);
    // A reconnect that keeps failing counts again after wake_timeout.
    p.OnSessionTerminated(T(100), "SQLSTATE 57P01");
    CHECK(p.OnConnectResult(T(105), false, 5s).state == PolicyState::kWaking);
    d = p.Tick(T(115));
    CHECK(d.state == PolicyState::kActive);
    CHECK(d.count_failures);
  }
}

TEST_CASE("API trouble while not probing: state unknown with a reason, never a wake",
          "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  p.OnApiState(T(0), Api(kActive, 0));
  auto d = QuietProbes(p, 10, 60);
  REQUIRE(d.state == PolicyState::kGoingIdle);
  CHECK_FALSE(d.compute_unknown);
  d = p.OnApiError(T(90), ApiError{ApiErrorKind::kServer, 503, std::nullopt, "x"});
  CHECK(d.compute_unknown);
  CHECK_FALSE(d.probing);
  CHECK_FALSE(d.probe_now);
  CHECK_THAT(d.reason, Catch::Contains("unknown") && Catch::Contains("server 503"));
  CHECK_FALSE(d.hint.empty());
  CHECK(p.last_compute_state() == ComputeStateKind::kUnknown);
  CHECK(p.Tick(T(500)).compute_unknown);  // stays unknown, still not probing
  CHECK_FALSE(p.Tick(T(500)).probing);
  d = p.OnApiState(T(510), Api(kIdle, 60));
  CHECK_FALSE(d.compute_unknown);
  CHECK(d.state == PolicyState::kIdle);
  // While probing, an API error says nothing about the compute (the probes do).
  SuspendPolicy q(Opts(), T(0));
  CHECK_FALSE(
      q.OnApiError(T(1), ApiError{ApiErrorKind::kNetwork, 0, std::nullopt, "x"}).compute_unknown);
}

TEST_CASE("wakes are counted once: by other from API transitions, by pgvigil on its connect",
          "[neon][policy]") {
  SuspendPolicy p(Opts(), T(0));
  p.OnApiState(T(0), Api(kActive, 0));
  QuietProbes(p, 10, 60);
  REQUIRE(p.OnApiState(T(90), Api(kIdle, 60)).state == PolicyState::kIdle);
  CHECK_FALSE(p.OnApiState(T(120), Api(kIdle, 60)).wake);
  // An app wakes it: init seen once, then active.
  CHECK_FALSE(p.OnApiState(T(150), Api(kInit, 60)).wake);
  auto d = p.OnApiState(T(180), Api(kActive, 175));
  REQUIRE(d.wake);
  CHECK(d.wake->by == "other");
  CHECK(d.wake->cold_start_upper == 60s);  // last idle poll (120) -> first active poll (180)
  CHECK(d.wake->cold_start_lower == 0s);
  CHECK_FALSE(p.OnApiState(T(210), Api(kActive, 205)).wake);
  // pgvigil's own wake (POST /wake) is counted at its connect, not again from the API.
  p.OnProbe(T(215), true, false);
  QuietProbes(p, 220, 290);
  REQUIRE(p.OnApiState(T(300), Api(kIdle, 280)).state == PolicyState::kIdle);
  p.OnWakeRequest(T(310));
  d = p.OnConnectResult(T(311), true, 900ms);
  REQUIRE(d.wake);
  CHECK(d.wake->by == "pgvigil");
  REQUIRE(d.cold_start);
  CHECK_FALSE(p.OnApiState(T(330), Api(kActive, 311)).wake);
}

}  // namespace
}  // namespace pgvigil
