// SanitizeUtf8 / IsCleanUtf8: what leaves pgvigil is valid UTF-8.
#include "util/utf8.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace pgvigil;

TEST_CASE("SanitizeUtf8 replaces invalid sequences and control bytes", "[utf8]") {
  CHECK(SanitizeUtf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(SanitizeUtf8("caf\xE9") == "caf\xEF\xBF\xBD");                            // LATIN1 é
  CHECK(SanitizeUtf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  CHECK(SanitizeUtf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(SanitizeUtf8("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);      // > U+10FFFF
  CHECK(SanitizeUtf8(std::string("a\0b\x1b\tc\n", 7)) == "a b \tc\n");
}

TEST_CASE("IsCleanUtf8 agrees with SanitizeUtf8", "[utf8]") {
  for (const std::string s : {"", "plain", "caf\xC3\xA9", "caf\xE9", "\xF0\x9F\x98\x80",
                              "\xF0\x9F\x98", "a\x7f", "tab\tok", "\xE2\x82\xAC", "\xE0\x80\x80"}) {
    INFO(s);
    CHECK(IsCleanUtf8(s) == (SanitizeUtf8(s) == s));
  }
}
