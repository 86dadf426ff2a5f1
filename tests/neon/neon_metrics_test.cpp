#include "neon/neon_metrics.hpp"

#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

std::string Text(prometheus::Registry& r) {
  return prometheus::TextSerializer().Serialize(r.Collect());
}

TEST_CASE("NeonMetrics registers and updates its families", "[neon]") {
  prometheus::Registry registry;
  NeonMetrics m(registry);
  auto t = Text(registry);
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_compute_state{state=\"unknown\"} 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_compute_state{state=\"idle\"} 0"));
  CHECK_THAT(t, Catch::Contains("pgvigil_suspend_policy_state{state=\"active\"} 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_suspend_policy_state{state=\"going_idle\"} 0"));
  CHECK_THAT(t, Catch::Contains("pgvigil_cold_starts_total 0"));

  m.SetComputeState(ComputeStateKind::kIdle);
  m.SetPolicyState(PolicyState::kWaking);
  m.RecordColdStart(1500ms);
  ApiResult ok = ComputeState{};
  ApiResult unauthorized = tl::make_unexpected(ApiError{ApiErrorKind::kUnauthorized, 401, {}, "x"});
  m.RecordApiRequest(ok);
  m.RecordApiRequest(ok);
  m.RecordApiRequest(unauthorized);
  t = Text(registry);
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_compute_state{state=\"idle\"} 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_compute_state{state=\"unknown\"} 0"));
  CHECK_THAT(t, Catch::Contains("pgvigil_suspend_policy_state{state=\"waking\"} 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_suspend_policy_state{state=\"active\"} 0"));
  CHECK_THAT(t, Catch::Contains("pgvigil_cold_starts_total 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_cold_start_duration_seconds_bucket{le=\"1\"} 0"));
  CHECK_THAT(t, Catch::Contains("pgvigil_cold_start_duration_seconds_bucket{le=\"2\"} 1"));
  CHECK_THAT(t, Catch::Contains("pgvigil_cold_start_duration_seconds_sum 1.5"));
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_api_requests_total{outcome=\"ok\"} 2"));
  CHECK_THAT(t, Catch::Contains("pgvigil_neon_api_requests_total{outcome=\"unauthorized\"} 1"));
}

TEST_CASE("NeonStatusJson renders the /health section", "[neon]") {
  NeonStatus s;
  s.enabled = true;
  s.endpoint_id = "ep-a-1";
  s.project_id = "proj";
  s.pooler = true;
  s.api_configured = true;
  s.policy_state = PolicyState::kGoingIdle;
  s.policy_reason = "quiet";
  s.compute_state = ComputeStateKind::kActive;
  s.suspend_timeout_seconds = 300;
  s.last_active = ParseRfc3339("2024-05-01T12:00:00Z");
  s.last_api_outcome = "ok";
  s.last_cold_start_seconds = 1.25;
  s.cold_starts = 3;
  s.hints = {"statement sampling needs the direct host (not -pooler); set neon.sampling_url"};
  auto j = nlohmann::json::parse(NeonStatusJson(s));
  CHECK(j["mode"] == "on");
  CHECK(j["endpoint_id"] == "ep-a-1");
  CHECK(j["pooler"] == true);
  CHECK(j["idle_policy"] == "allow_suspend");
  CHECK(j["policy"]["state"] == "going_idle");
  CHECK(j["policy"]["reason"] == "quiet");
  CHECK(j["compute"]["state"] == "active");
  CHECK(j["compute"]["suspend_timeout_seconds"] == 300);
  CHECK(j["compute"]["last_active"] == "2024-05-01T12:00:00.000Z");
  CHECK(j["api"]["configured"] == true);
  CHECK(j["api"]["last_outcome"] == "ok");
  CHECK(j["api"]["last_error"].is_null());
  CHECK(j["cold_starts"]["total"] == 3);
  CHECK(j["cold_starts"]["last_seconds"] == 1.25);
  REQUIRE(j["hints"].size() == 1);

  auto off = nlohmann::json::parse(NeonStatusJson(NeonStatus{}));
  CHECK(off["mode"] == "off");
  CHECK(off["endpoint_id"].is_null());
  CHECK(off["policy"]["state"].is_null());
  CHECK(off["compute"]["state"] == "unknown");
  CHECK(off["cold_starts"]["last_seconds"].is_null());
}

}  // namespace
}  // namespace pgvigil
