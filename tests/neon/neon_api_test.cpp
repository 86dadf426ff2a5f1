#include "neon/neon_api.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

SystemTime At(int secs) {
  return system_clock::from_time_t(1'700'000'000) + std::chrono::seconds(secs);
}

TEST_CASE("ParseRfc3339 accepts Neon's timestamps", "[neon]") {
  auto base = ParseRfc3339("2024-05-01T12:00:00Z");
  REQUIRE(base);
  CHECK(system_clock::to_time_t(*base) == 1714564800);
  auto frac = ParseRfc3339("2024-05-01T12:00:00.250Z");
  REQUIRE(frac);
  CHECK(*frac - *base == 250ms);
  auto offset = ParseRfc3339("2024-05-01T14:00:00+02:00");
  REQUIRE(offset);
  CHECK(*offset == *base);
  auto neg = ParseRfc3339("2024-05-01T07:30:00-04:30");
  REQUIRE(neg);
  CHECK(*neg == *base);
  for (const char* bad : {"", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T12:00:00Z",
                          "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zjunk", "yesterday"}) {
    CHECK_FALSE(ParseRfc3339(bad));
  }
  CHECK(ParseRfc3339(FormatRfc3339Utc(*frac)) == frac);
  CHECK(FormatRfc3339Utc(*base) == "2024-05-01T12:00:00.000Z");
}

TEST_CASE("InterpretEndpointResponse maps statuses and bodies", "[neon]") {
  const std::string key = "napi_secretkey123";
  auto now = At(0);
  SECTION("200 with a full endpoint") {
    auto r = InterpretEndpointResponse(
        200,
        R"({"endpoint":{"id":"ep-a","current_state":"idle","suspend_timeout_seconds":300,
            "last_active":"2024-05-01T12:00:00Z"}})",
        std::nullopt, key, now);
    REQUIRE(r.has_value());
    CHECK(ApiOutcome(r) == "ok");
    CHECK(r->state == ComputeStateKind::kIdle);
    CHECK(r->suspend_timeout_seconds == 300);
    CHECK(r->last_active == ParseRfc3339("2024-05-01T12:00:00Z"));
  }
  SECTION("states") {
    for (auto [text, kind] : {std::pair{"init", ComputeStateKind::kInit},
                              std::pair{"active", ComputeStateKind::kActive},
                              std::pair{"idle", ComputeStateKind::kIdle},
                              std::pair{"hibernating", ComputeStateKind::kUnknown}}) {
      auto r = InterpretEndpointResponse(
          200, std::string(R"({"endpoint":{"current_state":")") + text + "\"}}", std::nullopt, key,
          now);
      REQUIRE(r.has_value());
      CHECK(r->state == kind);
      CHECK(r->raw_state == text);
      CHECK_FALSE(r->last_active);
    }
  }
  SECTION("401 and 403 say to check the key and never echo it") {
    for (int status : {401, 403}) {
      auto r = InterpretEndpointResponse(status, R"({"message":"bad token napi_secretkey123"})",
                                         std::nullopt, key, now);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == ApiErrorKind::kUnauthorized);
      CHECK(r.error().http_status == status);
      CHECK_FALSE(r.error().Transient());
      CHECK_THAT(r.error().message, Catch::Contains("NEON_API_KEY"));
      CHECK_THAT(r.error().message, !Catch::Contains(key));
      CHECK(ApiOutcome(r) == "unauthorized");
    }
  }
  SECTION("404 names the ids to check") {
    auto r = InterpretEndpointResponse(404, "not json", std::nullopt, key, now);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ApiErrorKind::kNotFound);
    CHECK_THAT(r.error().message, Catch::Contains("neon.project_id"));
  }
  SECTION("429 carries Retry-After") {
    auto r = InterpretEndpointResponse(429, "", std::string("12"), key, now);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ApiErrorKind::kRateLimited);
    CHECK(r.error().retry_after == Millis(12'000));
    CHECK(r.error().Transient());
  }
  SECTION("5xx is a transient server error") {
    for (int status : {500, 502, 503}) {
      auto r = InterpretEndpointResponse(status, "", std::nullopt, key, now);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == ApiErrorKind::kServer);
      CHECK(r.error().Transient());
    }
  }
  SECTION("unexpected bodies are bad responses") {
    for (const char* body : {"", "[]", "{\"endpoint\":3}", "{\"endpoint\":{}}",
                             "{\"endpoint\":{\"current_state\":5}}", "<html>"}) {
      auto r = InterpretEndpointResponse(200, body, std::nullopt, key, now);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == ApiErrorKind::kBadResponse);
      CHECK(ApiOutcome(r) == "bad_response");
    }
  }
}

TEST_CASE("NeonApi reports configuration problems without a request", "[neon]") {
  NeonApiOptions o;
  o.api_key = "k";
  o.project_id = "p";
  o.endpoint_id = "e";
  o.api_url = *ParseNeonApiUrl("https://console.neon.tech/api/v2/");
  o.api_key = "";
  auto r = NeonApi(o).GetEndpoint();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ApiErrorKind::kConfig);
  CHECK_THAT(r.error().message, Catch::Contains("NEON_API_KEY"));

  o.api_key = "k";
  NeonApi ok(o);
  CHECK(ok.path() == "/api/v2/projects/p/endpoints/e");
}

TEST_CASE("PollPacer: interval, backoff, Retry-After, slow pace, window cap", "[neon]") {
  using Clock = PollPacer::Clock;
  auto t0 = Clock::time_point{} + std::chrono::hours(1);
  ApiResult ok = ComputeState{};
  auto err = [](ApiErrorKind kind, std::optional<Millis> retry = std::nullopt) {
    return ApiResult(tl::make_unexpected(ApiError{kind, 0, retry, "x"}));
  };
  PollPacerOptions o;
  o.interval = 10s;
  o.max_backoff = 60s;
  o.misconfigured_interval = 300s;
  o.max_per_minute = 60;

  SECTION("ok keeps the interval") {
    PollPacer p(o);
    CHECK(p.OnResult(t0, ok) == t0 + 10s);
  }
  SECTION("5xx/network failures keep the interval (bounded pace), Retry-After up to the cap") {
    PollPacer p(o);
    for (int i = 0; i < 40; ++i) {
      CHECK(p.OnResult(t0, err(i % 2 ? ApiErrorKind::kServer : ApiErrorKind::kNetwork)) ==
            t0 + 10s);
    }
    CHECK(p.OnResult(t0, err(ApiErrorKind::kServer, Millis(30'000))) == t0 + 30s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kServer, Millis(3'600'000))) == t0 + 60s);
    CHECK(p.OnResult(t0 + 1h, ok) == t0 + 1h + 10s);
    CHECK(p.consecutive_failures() == 0);
  }
  SECTION("429 backs off exponentially up to the cap, ok resets") {
    PollPacer p(o);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited)) == t0 + 10s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited)) == t0 + 20s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited)) == t0 + 40s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited)) == t0 + 60s);
    for (int i = 0; i < 40; ++i) CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited)) <= t0 + 60s);
    CHECK(p.consecutive_failures() == 44);
    CHECK(p.OnResult(t0 + 1h, ok) == t0 + 1h + 10s);
    CHECK(p.consecutive_failures() == 0);
  }
  SECTION("Retry-After is respected") {
    PollPacer p(o);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited, Millis(45'000))) == t0 + 45s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kRateLimited, Millis(1000))) == t0 + 20s);
  }
  SECTION("misconfiguration polls slowly") {
    PollPacer p(o);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kUnauthorized)) == t0 + 300s);
    CHECK(p.OnResult(t0, err(ApiErrorKind::kNotFound)) == t0 + 300s);
  }
  SECTION("a tiny interval is floored, the window caps requests per minute") {
    o.interval = 1ms;
    o.min_interval = 100ms;
    o.max_per_minute = 5;
    PollPacer p(o);
    auto t = t0;
    for (int i = 0; i < 4; ++i) {
      auto next = p.OnResult(t, ok);
      CHECK(next == t + 100ms);
      t = next;
    }
    // The fifth request fills the window: the next must wait until the first ages out.
    auto next = p.OnResult(t, ok);
    CHECK(next == t0 + 1min);
    CHECK(p.EarliestAllowed(t) == t0 + 1min);
    CHECK(p.EarliestAllowed(t0 + 2min) == t0 + 2min);
  }
}

}  // namespace
}  // namespace pgvigil
