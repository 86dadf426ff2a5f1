// The outbound endpoints of the config, parsed once (config/endpoints.hpp).
#include "config/endpoints.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

TEST_CASE("OTLP endpoint URLs parse; secrets never reach the redacted form", "[config]") {
  auto ep = ParseOtlpEndpoint("http://localhost:4318/v1/traces");
  REQUIRE(ep);
  CHECK(ep->scheme == "http");
  CHECK(ep->host == "localhost");
  CHECK(ep->port == 4318);
  CHECK(ep->path == "/v1/traces");

  auto bare = ParseOtlpEndpoint("https://otel.example.com");
  REQUIRE(bare);
  CHECK(bare->port == 443);
  CHECK(bare->path == "/v1/traces");

  auto secret = ParseOtlpEndpoint("https://user:hunter2@[::1]:4318/otlp/v1/traces?token=abc");
  REQUIRE(secret);
  CHECK(secret->host == "::1");
  CHECK(secret->username == "user");
  CHECK(secret->password == "hunter2");
  CHECK(secret->query == "token=abc");
  CHECK(secret->Redacted() == "https://[::1]:4318/otlp/v1/traces");

  auto no_scheme = ParseOtlpEndpoint("localhost:4318");
  REQUIRE_FALSE(no_scheme);
  CHECK(no_scheme.error().find("expected an http:// or https:// URL") != std::string::npos);
  auto grpc = ParseOtlpEndpoint("grpc://user:hunter2@collector:4317");
  REQUIRE_FALSE(grpc);
  CHECK(grpc.error().find("hunter2") == std::string::npos);
  CHECK(grpc.error().find("http://localhost:4318/v1/traces") != std::string::npos);
  auto port = ParseOtlpEndpoint("http://collector:99999/v1/traces");
  REQUIRE_FALSE(port);
  CHECK(port.error().find("port") != std::string::npos);
  CHECK_FALSE(ParseOtlpEndpoint("http://:4318/v1/traces"));
  CHECK_FALSE(ParseOtlpEndpoint("http://"));
}

TEST_CASE("Neon API URLs parse without a user, a query or a trailing slash", "[config]") {
  auto ep = ParseNeonApiUrl("https://console.neon.tech/api/v2/");
  REQUIRE(ep);
  CHECK(ep->path == "/api/v2");
  CHECK(*ep == DefaultNeonApiUrl());
  CHECK(ParseNeonApiUrl("http://127.0.0.1:1234/api/v2"));

  auto ftp = ParseNeonApiUrl("ftp://example.com");
  REQUIRE_FALSE(ftp);
  CHECK_THAT(ftp.error(), Catch::Contains("https://"));
  auto user = ParseNeonApiUrl("https://u:k@console.neon.tech/api/v2");
  REQUIRE_FALSE(user);
  CHECK_THAT(user.error(), Catch::Contains("neon.api_key_env") && !Catch::Contains("u:k"));
}

}  // namespace
}  // namespace pgvigil
