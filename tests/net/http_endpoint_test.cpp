#include "net/http_endpoint.hpp"

#include <catch2/catch.hpp>

using pgvigil::ParseHttpEndpoint;
using pgvigil::UrlWithoutSecrets;

TEST_CASE("http endpoints: scheme, host, port, path, query, userinfo") {
  auto ep = ParseHttpEndpoint("HTTPS://u%40x:p%3Aw@api.example.com:8443/api/v2/?a=b#frag");
  REQUIRE(ep);
  CHECK(ep->scheme == "https");
  CHECK(ep->host == "api.example.com");
  CHECK(ep->port == 8443);
  CHECK(ep->path == "/api/v2/");
  CHECK(ep->query == "a=b");
  CHECK(ep->username == "u@x");
  CHECK(ep->password == "p:w");
  CHECK(ep->Origin() == "https://api.example.com:8443");
  CHECK(ep->Redacted() == "https://api.example.com:8443/api/v2/");

  auto v6 = ParseHttpEndpoint("http://[::1]/x");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 80);
  CHECK(v6->Origin() == "http://[::1]:80");

  auto bare = ParseHttpEndpoint("http://collector");
  REQUIRE(bare);
  CHECK(bare->path.empty());
}

TEST_CASE("http endpoints: unusable URLs say why, without their secrets") {
  struct Bad {
    const char* url;
    const char* why;
  };
  for (const Bad& b :
       {Bad{"http://", "no host"}, Bad{"https://:443/x", "no host"},
        Bad{"collector:4318", "no scheme"}, Bad{"ftp://x", "not http or https"},
        Bad{"http://x:0", "port"}, Bad{"http://x:65536", "port"}, Bad{"http://x:12ab", "port"},
        Bad{"http://[::1", "bracket"}, Bad{"http://[::1]x", "junk"}, Bad{"http://a b/", "space"},
        Bad{"http://user:s3cret@:1/?token=t0k", "no host"}}) {
    auto ep = ParseHttpEndpoint(b.url);
    INFO(b.url);
    REQUIRE_FALSE(ep);
    CHECK(ep.error().find(b.why) != std::string::npos);
    CHECK(ep.error().find("s3cret") == std::string::npos);
    CHECK(ep.error().find("t0k") == std::string::npos);
  }
  CHECK(UrlWithoutSecrets("https://u:p@h:1/x?k=v") == "https://h:1/x");
}
