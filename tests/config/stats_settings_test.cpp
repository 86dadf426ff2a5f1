// [stats] per-collector intervals and timeouts: read, validated, named in errors.
#include <catch2/catch.hpp>
#include <string>

#include "config/settings.hpp"
#include "support/config_error.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

std::optional<std::string> UrlEnv(const char*) {
  return std::string("postgresql://u@db.internal/app");
}

TEST_CASE("stats.intervals and stats.timeouts by collector name", "[config][settings]") {
  Settings s = LoadSettingsFromString(
      "[stats]\ninterval = \"15s\"\nintervals = { database = \"15m\", settings = \"1h\" }\n"
      "[stats.timeouts]\ndatabase = \"10s\"\n",
      "t.toml", {}, &UrlEnv);
  CHECK(s.stats.interval == 15s);
  CHECK(s.stats.intervals == std::map<std::string, Millis>{{"database", 15min}, {"settings", 1h}});
  CHECK(s.stats.timeouts == std::map<std::string, Millis>{{"database", 10s}});
  CHECK(LoadSettingsFromString("", "t.toml", {}, &UrlEnv).stats.intervals.empty());
}

TEST_CASE("stats.intervals and stats.timeouts reject what cannot work", "[config][settings]") {
  std::string e = test::ConfigErrorOf("[stats.intervals]\ndatabse = \"5m\"\n", &UrlEnv);
  CHECK(e.find("stats.intervals.databse: unknown collector; did you mean \"database\"?") !=
        std::string::npos);
  CHECK(e.find("stat_bgwriter") != std::string::npos);  // lists what exists
  e = test::ConfigErrorOf("[stats.intervals]\nlocks = \"10ms\"\n", &UrlEnv);
  CHECK(e.find("stats.intervals.locks") != std::string::npos);
  e = test::ConfigErrorOf("[stats.timeouts]\nlocks = 5\n", &UrlEnv);
  CHECK(e.find("stats.timeouts.locks: expected a duration string") != std::string::npos);
  e = test::ConfigErrorOf("[stats]\ntimeouts = 5\n", &UrlEnv);
  CHECK(e.find("stats.timeouts: expected a table of collector names") != std::string::npos);
}

}  // namespace
}  // namespace pgvigil
