#include "util/trace_context.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace pgvigil;

namespace {
constexpr const char* kValid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
}

TEST_CASE("ParseTraceparent reads a W3C version-00 value", "[trace_context]") {
  auto tp = ParseTraceparent(kValid);
  REQUIRE(tp);
  CHECK(tp->trace_id[0] == 0x0a);
  CHECK(tp->trace_id[15] == 0x9c);
  CHECK(tp->parent_id[0] == 0xb7);
  CHECK(tp->parent_id[7] == 0x31);
  CHECK(tp->flags == 0x01);
  CHECK(tp->sampled());
  auto unsampled = ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  REQUIRE(unsampled);
  CHECK(!unsampled->sampled());
  // A later version may append fields after a dash.
  CHECK(ParseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra"));
}

TEST_CASE("ParseTraceparent refuses anything not exactly per spec", "[trace_context]") {
  const char* bad[] = {
      "",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",     // short flags
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01 ",   // v00 is exactly 55
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  // v00 has no extra fields
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",    // uppercase
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",    // zero trace id
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",    // zero parent id
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",    // version ff invalid
      "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",    // separator
      "00-0af7651916cd43dd8448eb211c8031-9cb7ad6b7169203331-01",    // misplaced dash
      "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",    // not hex
      "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",   // later version, no dash
  };
  for (const char* v : bad) {
    INFO(v);
    CHECK(!ParseTraceparent(v));
  }
}

TEST_CASE("SqlCommenterTraceparent reads a well-formed sqlcommenter list", "[trace_context]") {
  const std::string value = kValid;
  CHECK(SqlCommenterTraceparent("traceparent='" + value + "'"));
  auto tp = SqlCommenterTraceparent(" action='%2Fparam%2A\\'d',controller='index', traceparent='" +
                                    value + "' , framework='spring' ");
  REQUIRE(tp);
  CHECK(*tp == *ParseTraceparent(kValid));
  // Percent-encoded dashes decode to the same value.
  CHECK(SqlCommenterTraceparent(
      "traceparent='00%2D0af7651916cd43dd8448eb211c80319c%2Db7ad6b7169203331%2D01'"));
  // No traceparent key: a valid list, nothing to link.
  CHECK(!SqlCommenterTraceparent("controller='index'"));
}

TEST_CASE("SqlCommenterTraceparent ignores malformed or ambiguous comments", "[trace_context]") {
  const std::string v = kValid;
  const std::string bad[] = {
      "",
      " pgvigil ",
      "traceparent=" + v,                                   // unquoted
      "traceparent='" + v,                                  // unterminated
      "traceparent='" + v + "',",                           // trailing comma
      "traceparent='" + v + "' junk",                       // junk after a pair
      "trace parent='" + v + "'",                           // space in key
      "traceparent='00-0af7651916cd43dd8448eb211c80319c'",  // bad value
      "traceparent='" + v + "',traceparent='" + v + "'",    // duplicate claim
      "a='%zz',traceparent='" + v + "'",                    // bad escape elsewhere
      "see traceparent='" + v + "' for details",            // prose around it
  };
  for (const auto& c : bad) {
    INFO(c);
    CHECK(!SqlCommenterTraceparent(c));
  }
}
