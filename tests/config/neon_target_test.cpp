#include "config/neon_target.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

ConnParams Params(std::initializer_list<std::pair<std::string, std::string>> kv) {
  ConnParams p;
  for (const auto& [k, v] : kv) p.Set(k, v);
  return p;
}

TEST_CASE("IsNeonHost recognizes neon.tech hosts only", "[neon]") {
  CHECK(IsNeonHost("ep-cool-darkness-123456.us-east-2.aws.neon.tech"));
  CHECK(IsNeonHost("EP-X-POOLER.eu-central-1.AWS.NEON.TECH."));
  CHECK(IsNeonHost("neon.tech"));
  CHECK_FALSE(IsNeonHost("evilneon.tech"));
  CHECK_FALSE(IsNeonHost("neon.tech.example.com"));
  CHECK_FALSE(IsNeonHost("127.0.0.1"));
  CHECK_FALSE(IsNeonHost(""));
  CHECK_FALSE(IsNeonHost("/var/run/postgresql"));
  CHECK(IsNeonHost("ep-a.neon.build", {"neon.build"}));
  CHECK(IsNeonHost("ep-a.neon.build", {".neon.build"}));
  CHECK_FALSE(IsNeonHost("ep-a.neon.build"));
  // A multi-host list is judged by its first host.
  CHECK(IsNeonHost("ep-a.us-east-2.aws.neon.tech,backup.example.com"));
}

TEST_CASE("DeriveEndpointId takes the first label without -pooler", "[neon]") {
  CHECK(DeriveEndpointId("ep-cool-darkness-123456.us-east-2.aws.neon.tech") ==
        "ep-cool-darkness-123456");
  CHECK(DeriveEndpointId("ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech") ==
        "ep-cool-darkness-123456");
  CHECK(DeriveEndpointId("EP-Upper.neon.tech") == "ep-upper");
  CHECK(DeriveEndpointId("127.0.0.1").empty());
  CHECK(DeriveEndpointId("::1").empty());
  CHECK(DeriveEndpointId("/tmp/socket").empty());
  CHECK(DeriveEndpointId("").empty());
  CHECK(DeriveEndpointId("-pooler.neon.tech") == "-pooler");
}

TEST_CASE("IsPoolerHost", "[neon]") {
  CHECK(IsPoolerHost("ep-x-123-pooler.us-east-2.aws.neon.tech"));
  CHECK_FALSE(IsPoolerHost("ep-x-123.us-east-2.aws.neon.tech"));
  CHECK_FALSE(IsPoolerHost("ep-x.pooler.neon.tech"));
  CHECK_FALSE(IsPoolerHost("127.0.0.1"));
}

TEST_CASE("ResolveNeonMode: on/off win, auto follows the host", "[neon]") {
  NeonSettings s;
  auto neon = Params({{"host", "ep-a-1.us-east-2.aws.neon.tech"}});
  auto local = Params({{"host", "127.0.0.1"}});
  s.mode = NeonMode::kAuto;
  CHECK(ResolveNeonMode(s, neon));
  CHECK_FALSE(ResolveNeonMode(s, local));
  s.mode = NeonMode::kOn;
  CHECK(ResolveNeonMode(s, local));
  s.mode = NeonMode::kOff;
  CHECK_FALSE(ResolveNeonMode(s, neon));
}

TEST_CASE("EffectiveEndpointId prefers the configured id", "[neon]") {
  NeonSettings s;
  auto p = Params({{"host", "ep-a-1-pooler.us-east-2.aws.neon.tech"}});
  CHECK(EffectiveEndpointId(s, p) == "ep-a-1");
  s.endpoint_id = "ep-configured";
  CHECK(EffectiveEndpointId(s, p) == "ep-configured");
}

TEST_CASE("CheckNeonTls refuses weak sslmode with a clear message", "[neon]") {
  NeonSettings s;
  for (const char* good : {"require", "verify-ca", "verify-full"}) {
    CHECK_FALSE(CheckNeonTls(s, Params({{"sslmode", good}}), std::nullopt));
  }
  for (const char* bad : {"disable", "allow", "prefer"}) {
    auto err = CheckNeonTls(s, Params({{"sslmode", bad}}), std::nullopt);
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains(std::string("\"") + bad + "\""));
    CHECK_THAT(*err, Catch::Contains("sslmode=require"));
    CHECK_THAT(*err, Catch::Contains("neon.allow_insecure_tls"));
  }
  auto missing = CheckNeonTls(s, Params({{"host", "x"}}), std::nullopt);
  REQUIRE(missing);
  CHECK_THAT(*missing, Catch::Contains("prefer"));
  // libpq takes PGSSLMODE when the URL has none; the URL wins when both are there.
  CHECK_FALSE(CheckNeonTls(s, Params({{"host", "x"}}), "require"));
  auto env_weak = CheckNeonTls(s, Params({{"host", "x"}}), "prefer");
  REQUIRE(env_weak);
  CHECK_THAT(*env_weak, Catch::Contains("PGSSLMODE"));
  CHECK(CheckNeonTls(s, Params({{"sslmode", "disable"}}), "require"));
  s.allow_insecure_tls = true;
  CHECK_FALSE(CheckNeonTls(s, Params({{"sslmode", "disable"}}), std::nullopt));
}

TEST_CASE("AddEndpointOption adds options=endpoint=<id> once", "[neon]") {
  ConnParams p = Params({{"host", "h"}});
  AddEndpointOption(p, "ep-a-1");
  CHECK(p.Get("options") == "endpoint=ep-a-1");
  AddEndpointOption(p, "ep-other");
  CHECK(p.Get("options") == "endpoint=ep-a-1");
  ConnParams q = Params({{"options", "-c statement_timeout=5s"}});
  AddEndpointOption(q, "ep-a-1");
  CHECK(q.Get("options") == "-c statement_timeout=5s endpoint=ep-a-1");
  ConnParams r;
  AddEndpointOption(r, "");
  CHECK(r.Get("options").empty());
}

TEST_CASE("neon.endpoint_option puts options=endpoint=<id> into the connection params", "[neon]") {
  const ConnParams neon = Params({{"host", "ep-cool-1-pooler.us-east-2.aws.neon.tech"},
                                  {"sslmode", "require"},
                                  {"application_name", "pgvigil"}});
  NeonSettings s;
  // Off by default: nothing changes.
  CHECK(NeonConnParams(s, neon).Get("options").empty());

  s.endpoint_option = true;
  ConnParams p = NeonConnParams(s, neon);
  CHECK(p.Get("options") == "endpoint=ep-cool-1");
  CHECK(p.Get("host") == "ep-cool-1-pooler.us-east-2.aws.neon.tech");
  CHECK(p.Get("application_name") == "pgvigil");

  // A configured endpoint id wins over the derived one; options already there are kept.
  s.endpoint_id = "ep-configured-9";
  ConnParams with_options = neon;
  with_options.Set("options", "-c statement_timeout=5s");
  CHECK(NeonConnParams(s, with_options).Get("options") ==
        "-c statement_timeout=5s endpoint=ep-configured-9");
  // An endpoint= the user wrote into the URL is left alone.
  ConnParams explicit_id = neon;
  explicit_id.Set("options", "endpoint=ep-own");
  CHECK(NeonConnParams(s, explicit_id).Get("options") == "endpoint=ep-own");

  // Not Neon (auto mode, plain host) or Neon mode off: a plain server would reject the option.
  s.endpoint_id.clear();
  CHECK(NeonConnParams(s, Params({{"host", "db.example.com"}})).Get("options").empty());
  s.mode = NeonMode::kOff;
  CHECK(NeonConnParams(s, neon).Get("options").empty());
  // Forced on for a host the id can't be derived from, and none configured: unchanged.
  s.mode = NeonMode::kOn;
  CHECK(NeonConnParams(s, Params({{"host", "127.0.0.1"}})).Get("options").empty());
}

TEST_CASE("neon.endpoint_option from the config file reaches the connection params", "[neon]") {
  CliOptions cli;
  const Settings settings = LoadSettingsFromString(
      "[database]\n"
      "url = \"postgresql://u@ep-quiet-7.eu-central-1.aws.neon.tech/neondb?sslmode=require\"\n"
      "[neon]\n"
      "endpoint_option = true\n",
      "test.toml", cli, [](const char*) -> std::optional<std::string> { return std::nullopt; });
  CHECK(settings.neon.endpoint_option);
  const ConnParams p = NeonConnParams(settings.neon, settings.database.conn);
  CHECK(p.Get("options") == "endpoint=ep-quiet-7");
  CHECK(p.Get("sslmode") == "require");
  // The settings themselves keep the URL as written (it is what /health shows).
  CHECK(settings.database.conn.Get("options").empty());
}

TEST_CASE("DescribeNeonTarget gathers id, pooler flag and hints", "[neon]") {
  NeonSettings s;
  auto t = DescribeNeonTarget(
      s, Params({{"host", "ep-a-1-pooler.us-east-2.aws.neon.tech"}, {"sslmode", "require"}}));
  CHECK(t.enabled);
  CHECK(t.pooler);
  CHECK(t.endpoint_id == "ep-a-1");
  REQUIRE(t.warnings.size() == 1);
  CHECK_THAT(t.warnings[0], Catch::Contains("neon.sampling_url"));

  s.sampling_conn = Params({{"host", "direct"}});
  CHECK(DescribeNeonTarget(s, Params({{"host", "ep-a-1-pooler.neon.tech"}})).warnings.empty());

  auto off = DescribeNeonTarget(NeonSettings{}, Params({{"host", "db.example.com"}}));
  CHECK_FALSE(off.enabled);
  CHECK(off.warnings.empty());

  NeonSettings forced;
  forced.mode = NeonMode::kOn;
  auto ip = DescribeNeonTarget(forced, Params({{"host", "127.0.0.1"}}));
  CHECK(ip.enabled);
  CHECK(ip.endpoint_id.empty());
  REQUIRE_FALSE(ip.warnings.empty());
  CHECK_THAT(ip.warnings[0], Catch::Contains("neon.endpoint_id"));

  auto sni =
      DescribeNeonTarget(NeonSettings{}, Params({{"host", "ep-a-1.neon.tech"}, {"sslsni", "0"}}));
  REQUIRE(sni.warnings.size() == 1);
  CHECK_THAT(sni.warnings[0], Catch::Contains("options=endpoint"));
}

}  // namespace
}  // namespace pgvigil
