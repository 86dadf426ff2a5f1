#include "health/health_model.hpp"

#include <catch2/catch.hpp>

using namespace pgvigil;
using namespace std::chrono_literals;

namespace {

ProbeSettings Probe(int failures = 3, int successes = 2) {
  ProbeSettings p;
  p.failure_threshold = failures;
  p.success_threshold = successes;
  p.degraded_latency = 500ms;
  return p;
}

ProbeResult Ok(std::chrono::milliseconds latency = 5ms) {
  ProbeResult r;
  r.ok = true;
  r.latency = latency;
  r.at = std::chrono::system_clock::now();
  return r;
}

ProbeResult Fail(ErrorKind kind = ErrorKind::kTimeout, std::string sqlstate = "") {
  ProbeResult r;
  r.ok = false;
  r.error = DbError{kind, std::move(sqlstate), "boom"};
  r.at = std::chrono::system_clock::now();
  return r;
}

}  // namespace

TEST_CASE("starts in starting and goes up on the first success") {
  HealthModel m(Probe());
  CHECK(m.state() == DbState::kStarting);
  CHECK_FALSE(m.any_probe_finished());
  CHECK(m.Observe(Ok()));
  CHECK(m.state() == DbState::kUp);
  CHECK(m.reason().empty());
  CHECK(m.last_success().has_value());
}

TEST_CASE("down only after failure_threshold consecutive failures") {
  HealthModel m(Probe(3));
  m.Observe(Ok());
  CHECK(m.Observe(Fail()));  // up -> degraded
  CHECK(m.state() == DbState::kDegraded);
  CHECK_FALSE(m.Observe(Fail()));
  CHECK(m.state() == DbState::kDegraded);
  CHECK(m.Observe(Fail()));
  CHECK(m.state() == DbState::kDown);
  CHECK(m.reason().find("timeout") != std::string::npos);
  CHECK(m.last_error_kind() == ErrorKind::kTimeout);
}

TEST_CASE("failures at start stay starting until the threshold") {
  HealthModel m(Probe(2));
  CHECK_FALSE(m.Observe(Fail(ErrorKind::kRefused)));
  CHECK(m.state() == DbState::kStarting);
  CHECK(m.reason().find("refused") != std::string::npos);
  CHECK(m.Observe(Fail(ErrorKind::kRefused)));
  CHECK(m.state() == DbState::kDown);
}

TEST_CASE(
    "recovery from down needs success_threshold successes, then degraded while failures "
    "are recent") {
  HealthModel m(Probe(1, 2));
  m.Observe(Fail());
  REQUIRE(m.state() == DbState::kDown);
  CHECK_FALSE(m.Observe(Ok()));
  CHECK(m.state() == DbState::kDown);
  CHECK(m.Observe(Ok()));
  CHECK(m.state() == DbState::kDegraded);
  for (int i = 0; i < 10; ++i) m.Observe(Ok());
  CHECK(m.state() == DbState::kUp);
}

TEST_CASE("auth failure is misconfigured at once") {
  HealthModel m(Probe(5));
  CHECK(m.Observe(Fail(ErrorKind::kAuth, "28P01")));
  CHECK(m.state() == DbState::kMisconfigured);
  CHECK(m.reason().find("auth") != std::string::npos);
  CHECK(m.reason().find("28P01") != std::string::npos);
  CHECK_FALSE(DbStateUsable(m.state()));
}

TEST_CASE("slow success is degraded") {
  HealthModel m(Probe());
  m.Observe(Ok(800ms));
  CHECK(m.state() == DbState::kDegraded);
  CHECK(m.reason().find("800ms") != std::string::npos);
  CHECK(DbStateUsable(m.state()));
  m.Observe(Ok(10ms));
  CHECK(m.state() == DbState::kUp);
}

TEST_CASE("idle is usable and waking is not") {
  HealthModel m(Probe());
  m.Observe(Ok());
  CHECK(m.SetIdle("compute suspended"));
  CHECK(m.state() == DbState::kIdle);
  CHECK(DbStateUsable(DbState::kIdle));
  CHECK(m.SetWaking());
  CHECK_FALSE(DbStateUsable(DbState::kWaking));
  m.Observe(Ok());
  CHECK(m.state() == DbState::kUp);
}

TEST_CASE("state names are stable") {
  CHECK(DbStateName(DbState::kMisconfigured) == "misconfigured");
  CHECK(DbStateName(DbState::kStarting) == "starting");
}
