// [stats] per-collector intervals and timeouts: read, validated, named in errors.
#include <catch2/catch.hpp>
#include <string>

#include "config/settings.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

std::optional<std::string> NoEnv(const char*) {
  return std::string("postgresql://u@db.internal/app");
}

std::string LoadError(std::string_view toml) {
  INFO("config:\n" << toml);
  try {
    LoadSettingsFromString(toml, "t.toml", {}, &NoEnv);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError");
  return "";
}

TEST_CASE("stats.intervals and stats.timeouts by collector name", "[config][settings]") {
  Settings s = LoadSettingsFromString(
      "[stats]\ninterval = \"15s\"\nintervals = { database = \"15m\", settings = \"1h\" }\n"
      "[stats.timeouts]\ndatabase = \"10s\"\n",
      "t.toml", {}, &NoEnv);
  CHECK(s.stats.interval == 15s);
  CHECK(s.stats.intervals == std::map<std::string, Millis>{{"database", 15min}, {"settings", 1h}});
  CHECK(s.stats.timeouts == std::map<std::string, Millis>{{"database", 10s}});
  CHECK(LoadSettingsFromString("", "t.toml", {}, &NoEnv).stats.intervals.empty());
}

TEST_CASE("stats.intervals and stats.timeouts reject what cannot work", "[config][settings]") {
  std::string e = LoadError("[stats.intervals]\ndatabse = \"5m\"\n");
  CHECK(e.find("stats.intervals.databse: unknown collector; did you mean \"database\"?") !=
        std::string::npos);
  CHECK(e.find("stat_bgwriter") != std::string::npos);  // lists what exists
  e = LoadError("[stats.intervals]\nlocks = \"10ms\"\n");
  CHECK(e.find("stats.intervals.locks") != std::string::npos);
  e = LoadError("[stats.timeouts]\nlocks = 5\n");
  CHECK(e.find("stats.timeouts.locks: expected a duration string") != std::string::npos);
  e = LoadError("[stats]\ntimeouts = 5\n");
  CHECK(e.find("stats.timeouts: expected a table of collector names") != std::string::npos);
}

}  // namespace
}  // namespace pgvigil
