#include "config/listen_address.hpp"

#include <catch2/catch.hpp>

#include "config/settings.hpp"

namespace pgvigil {
namespace {

std::optional<std::string> UrlOnly(const char* name) {
  if (std::string_view(name) == "PGVIGIL_DATABASE_URL") return "postgresql://u@127.0.0.1/db";
  return std::nullopt;
}

}  // namespace

TEST_CASE("listen address parsing", "[config]") {
  auto a = ParseListenAddress("0.0.0.0:9188");
  REQUIRE(a);
  CHECK(a->host == "0.0.0.0");
  CHECK(a->port == 9188);
  auto v6 = ParseListenAddress("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  CHECK(v6->ToString() == "[::1]:0");
  auto name = ParseListenAddress("localhost:80");
  REQUIRE(name);
  CHECK(name->host == "localhost");
  for (const char* bad : {"", "9188", "host:", "host:99999", "host:12x", "::1:80", "[::1]",
                          "[::1:80", "[]:80", "host:-1"}) {
    INFO(bad);
    auto r = ParseListenAddress(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("HOST:PORT") != std::string::npos);
  }
}

// The config and the server used to disagree: the server took ":9188" (all interfaces) while
// the config refused it. Now the config parses once and the server binds what it was given.
TEST_CASE("\":PORT\" means every IPv4 interface, in the file and in --listen", "[config]") {
  auto bare = ParseListenAddress(":80");
  REQUIRE(bare);
  CHECK(bare->host == "0.0.0.0");
  CHECK(bare->port == 80);

  Settings file = LoadSettingsFromString("[http]\nlisten = \":9187\"\n", "t.toml", {}, &UrlOnly);
  CHECK(file.http.listen == ListenAddress{"0.0.0.0", 9187});
  CliOptions cli;
  cli.listen = ":9189";
  Settings flag = LoadSettingsFromString("", "t.toml", cli, &UrlOnly);
  CHECK(flag.http.listen.ToString() == "0.0.0.0:9189");
}

}  // namespace pgvigil
