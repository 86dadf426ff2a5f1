// Regression cases found by fuzz/config_fuzz.cpp. Each input once tripped an assertion or UB
// inside toml++ 3.3 (upstream marzer/tomlplusplus#294 and the non-ASCII whitespace table); the
// loader must turn them into a ConfigError naming the position, never crash.
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "config/settings.hpp"
#include "support/config_error.hpp"

namespace pgvigil {
namespace {

std::optional<std::string> NoEnv(const char*) { return std::nullopt; }

TEST_CASE("malformed table headers give a syntax error, not a crash", "[config][fuzz]") {
  for (const char* text : {"[&\n", "[ { host = \"a\" }\n", "[[[1]]]\n", "[[=\n", "[[[]]\n"}) {
    const std::string message = test::ConfigErrorOf(text, &NoEnv);
    CHECK(message.rfind("t.toml:1:", 0) == 0);
    CHECK(message.find("TOML syntax error") != std::string::npos);
  }
}

TEST_CASE("Arabic presentation forms (U+FEC6..U+FEFE) are not whitespace", "[config][fuzz]") {
  // U+FEF0 and U+FEC6 in the places toml++ checks for whitespace.
  for (const char* text : {"\xef\xbb\xb0ol\n", "[probe]\ninterval = \xef\xbb\xb0\"10s\"\n",
                           "a\xef\xbb\xb0 = 1\n", "\xef\xbb\x86\n"}) {
    const std::string message = test::ConfigErrorOf(text, &NoEnv);
    CHECK(message.find("TOML syntax error") != std::string::npos);
  }
}

TEST_CASE("a password in the file stays out of a syntax error", "[config][fuzz]") {
  const std::string message = test::ConfigErrorOf(
      "[database]\nurl = \"postgresql://u:Fz9SecretPw@h/db\"\n[ { url = 1 }\n", &NoEnv);
  CHECK(message.find("Fz9SecretPw") == std::string::npos);
}

}  // namespace
}  // namespace pgvigil
