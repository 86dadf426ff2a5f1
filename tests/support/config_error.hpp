#pragma once
// ConfigErrorOf: loads TOML text (file name "t.toml") that must be refused, and returns the
// ConfigError's message; the test fails when there is none.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace pgvigil::test {

inline std::string ConfigErrorOf(std::string_view toml, EnvLookup env, const CliOptions& cli = {}) {
  INFO("config:\n" << toml);
  try {
    LoadSettingsFromString(toml, "t.toml", cli, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError");
  return "";
}

}  // namespace pgvigil::test
