#include "config/duration.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

TEST_CASE("ParseDuration accepts units and combinations", "[config][duration]") {
  CHECK(ParseDuration("250ms") == Millis(250));
  CHECK(ParseDuration("10s") == Millis(10'000));
  CHECK(ParseDuration("1m") == Millis(60'000));
  CHECK(ParseDuration("1h30m") == Millis(90 * 60'000));
  CHECK(ParseDuration("2d") == Millis(2 * 86'400'000LL));
  CHECK(ParseDuration("1d2h3m4s5ms") == Millis(86'400'000LL + 2 * 3'600'000 + 3 * 60'000 + 4005));
  CHECK(ParseDuration("0s") == Millis(0));
  CHECK(ParseDuration("1500ms") == Millis(1500));
}

TEST_CASE("ParseDuration rejects bad input with a sentence naming the value",
          "[config][duration]") {
  struct Case {
    const char* text;
    const char* expect;  // a fragment of the message
  };
  const Case cases[] = {
      {"", "empty duration"},
      {"10", "\"10\" has no unit; write e.g. \"10s\""},
      {"-1s", "\"-1s\" has a sign"},
      {"+1s", "has a sign"},
      {"1.5s", "\"1.5s\" has a fraction"},
      {"2x", "\"2x\" has an unknown unit \"x\""},
      {"s", "\"s\" is not a duration"},
      {"1h30", "\"1h30\" is not a duration"},
      {"30m1h", "larger units first"},
      {"1m1m", "larger units first"},
      {" 10s", "is not a duration"},
      {"10 s", "is not a duration"},
      {"10S", "unknown unit"},
      {"99999999999999999999s", "too large"},
      {"9999999999999999d", "too large"},
      {"106751991168d", "too large"},
  };
  for (const Case& c : cases) {
    INFO("input: \"" << c.text << "\"");
    std::string error;
    CHECK_FALSE(ParseDuration(c.text, &error).has_value());
    CHECK_THAT(error, Catch::Contains(c.expect));
    CHECK_FALSE(ParseDuration(c.text).has_value());  // no error pointer: still fine
  }
  std::string error;
  ParseDuration("2x", &error);
  CHECK_THAT(error, Catch::Contains("\"250ms\"") && Catch::Contains("\"10s\""));
}

TEST_CASE("FormatDuration gives the shortest exact spelling", "[config][duration]") {
  CHECK(FormatDuration(0ms) == "0s");
  CHECK(FormatDuration(1500ms) == "1500ms");
  CHECK(FormatDuration(90'000ms) == "1m30s");
  CHECK(FormatDuration(250ms) == "250ms");
  CHECK(FormatDuration(10s) == "10s");
  CHECK(FormatDuration(3600s) == "1h");
  CHECK(FormatDuration(24h + 30min) == "1d30m");
  CHECK(FormatDuration(-2s) == "-2s");
  for (Millis d : {0ms, 1ms, 999ms, 1000ms, 61'000ms, Millis(90'061'000)}) {
    CHECK(ParseDuration(FormatDuration(d)) == d);  // round trip
  }
}

}  // namespace
}  // namespace pgvigil
