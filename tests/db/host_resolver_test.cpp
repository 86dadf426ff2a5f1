// Host lookups under a deadline: the pure host/hostaddr rewrite, real lookups through the
// system resolver (/etc/hosts), and connecting by name to the harness's PostgreSQL [live].
// A DNS server that never answers is tested at the agent level (faults_live_test.cpp).
#include "db/host_resolver.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "db/connection.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

ConnParams Of(std::vector<std::pair<std::string, std::string>> kv) {
  ConnParams p;
  p.params = std::move(kv);
  return p;
}

TEST_CASE("WithHostAddresses: one entry per address, names kept for TLS and messages",
          "[db][resolver]") {
  const ConnParams in = Of({{"host", "db.example.com"}, {"port", "6432"}, {"dbname", "app"}});
  const ConnParams out = WithHostAddresses(in, {"db.example.com"}, {{"10.0.0.1", "2001:db8::7"}});
  CHECK(out.Get("host") == "db.example.com,db.example.com");
  CHECK(out.Get("hostaddr") == "10.0.0.1,2001:db8::7");
  CHECK(out.Get("port") == "6432");  // one port applies to every entry
  CHECK(out.Get("dbname") == "app");
}

TEST_CASE("WithHostAddresses: per-host ports follow their host; literals and sockets stay as is",
          "[db][resolver]") {
  const ConnParams in = Of({{"host", "a.example,10.1.1.1,/run/postgresql"}, {"port", "1,2,3"}});
  const ConnParams out = WithHostAddresses(in, {"a.example", "10.1.1.1", "/run/postgresql"},
                                           {{"10.0.0.1", "10.0.0.2"}, {}, {}});
  CHECK(out.Get("host") == "a.example,a.example,10.1.1.1,/run/postgresql");
  CHECK(out.Get("hostaddr") == "10.0.0.1,10.0.0.2,,");
  CHECK(out.Get("port") == "1,1,2,3");
}

TEST_CASE("WithHostAddresses: nothing resolved leaves the parameters alone", "[db][resolver]") {
  const ConnParams in = Of({{"host", "10.1.1.1"}, {"port", "5432"}});
  CHECK(WithHostAddresses(in, {"10.1.1.1"}, {{}}) == in);
}

TEST_CASE("ResolveHosts: names go through the system resolver, the rest passes through",
          "[db][resolver]") {
  SECTION("a name from /etc/hosts") {
    auto r = ResolveHosts(Of({{"host", "localhost"}, {"port", "5432"}}), Clock::now() + 5s);
    REQUIRE(r.has_value());
    CHECK(r->Get("hostaddr").find("127.0.0.1") != std::string::npos);
    CHECK(r->Get("host").starts_with("localhost"));
    CHECK(r->Get("host").find_first_not_of("localhost,") == std::string::npos);
  }
  SECTION("IP literals, socket directories and an explicit hostaddr need no lookup") {
    for (const auto& in :
         {Of({{"host", "127.0.0.1"}}), Of({{"host", "::1"}}), Of({{"host", "/var/run/postgresql"}}),
          Of({{"host", "localhost"}, {"hostaddr", "127.0.0.1"}})}) {
      auto r = ResolveHosts(in, Clock::now() + 5s);
      REQUIRE(r.has_value());
      CHECK(*r == in);
    }
  }
  SECTION("a name that does not resolve is a dns error naming the host") {
    auto r = ResolveHosts(Of({{"host", "pgvigil-no-such-host.invalid"}}), Clock::now() + 10s);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::kDns);
    CHECK_THAT(r.error().message,
               Catch::StartsWith("could not translate host name \"pgvigil-no-such-host.invalid\""));
  }
  SECTION("in a host list, an entry that does not resolve is dropped") {
    auto r = ResolveHosts(Of({{"host", "pgvigil-no-such-host.invalid,localhost"}, {"port", "1,2"}}),
                          Clock::now() + 10s);
    REQUIRE(r.has_value());
    CHECK(r->Get("host").find("invalid") == std::string::npos);
    CHECK(r->Get("port").find('1') == std::string::npos);
    CHECK(r->Get("hostaddr").find("127.0.0.1") != std::string::npos);
  }
  SECTION("host and port lists that do not line up are left to libpq") {
    const ConnParams in = Of({{"host", "localhost"}, {"port", "1,2"}});
    auto r = ResolveHosts(in, Clock::now() + 5s);
    REQUIRE(r.has_value());
    CHECK(*r == in);
  }
}

TEST_CASE("Connection: a host name is resolved under the deadline and connects [live]",
          "[db][resolver][live]") {
  test::PgServer pg;
  ParsedUrl url = ParseDatabaseUrl(pg.Url());
  REQUIRE(url.has_value());
  ConnParams params = *url;
  params.Set("host", "localhost");  // /etc/hosts may list ::1 first: libpq moves on to 127.0.0.1
  auto opened = Connection::Open(params, Clock::now() + 5s);
  INFO((opened ? std::string() : opened.error().message));
  REQUIRE(opened.has_value());
  auto r = opened->Exec("SELECT inet_server_addr()::text", Clock::now() + 5s);
  REQUIRE(r.has_value());
  CHECK(r->Text(0, 0) == "127.0.0.1/32");
}

}  // namespace
}  // namespace pgvigil
