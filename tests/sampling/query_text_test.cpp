#include "sampling/query_text.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <string>

namespace pgvigil {
TEST_CASE("ObfuscateQuery replaces literals", "[query_text]") {
  CHECK(ObfuscateQuery("SELECT * FROM users WHERE password = 'hunter2'") ==
        "SELECT * FROM users WHERE password = ?");
  CHECK(ObfuscateQuery("SELECT 'it''s hunter2'") == "SELECT ?");
  CHECK(ObfuscateQuery("SELECT E'\\'hunter2', e'a\\\\' || 'b'") == "SELECT ?, ? || ?");
  CHECK(ObfuscateQuery("SELECT U&'d\\0061t\\+000061' UESCAPE '!'") == "SELECT ? UESCAPE ?");
  CHECK(ObfuscateQuery("SELECT B'1010', X'1F', N'national'") == "SELECT ?, ?, ?");
  CHECK(ObfuscateQuery("SELECT $$hunter2$$, $tag$it's $$ hunter2$tag$") == "SELECT ?, ?");
  CHECK(ObfuscateQuery("SELECT 42, 3.14, .5, 1e10, 2.5E-3, 0xFF, 1_000_000") ==
        "SELECT ?, ?, ?, ?, ?, ?, ?");
  CHECK(ObfuscateQuery("SELECT 'a'::text, '2020-01-01'::date") == "SELECT ?::text, ?::date");
  CHECK(ObfuscateQuery("SELECT DATE '2020-01-01'") == "SELECT DATE ?");
  CHECK(ObfuscateQuery("SELECT 'foo'\n  'bar'") == "SELECT ?");
}

TEST_CASE("ObfuscateQuery keeps structure, params and identifiers", "[query_text]") {
  CHECK(ObfuscateQuery("SELECT a, b FROM t WHERE id = $1 AND x = $2") ==
        "SELECT a, b FROM t WHERE id = $1 AND x = $2");
  CHECK(ObfuscateQuery("SELECT \"Weird \"\"Name\"\"\" FROM \"t1\"") ==
        "SELECT \"Weird \"\"Name\"\"\" FROM \"t1\"");
  CHECK(ObfuscateQuery("SELECT col1, t2.c_3, a$b FROM t2") == "SELECT col1, t2.c_3, a$b FROM t2");
  CHECK(ObfuscateQuery("SELECT f(x) FROM g") == "SELECT f(x) FROM g");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE data ? 'key'") == "SELECT * FROM t WHERE data ? ?");
}

TEST_CASE("ObfuscateQuery folds whitespace and strips comments", "[query_text]") {
  CHECK(ObfuscateQuery("  SELECT\n\t1   -- secret comment 'x'\nFROM  t  ") == "SELECT ? FROM t");
  CHECK(ObfuscateQuery("SELECT /* outer /* nested */ still comment */ 1") == "SELECT ?");
  CHECK(ObfuscateQuery("/* pgvigil */ SELECT 1") == "SELECT ?");
  CHECK(ObfuscateQuery("SELECT a/*x*/b") == "SELECT a b");
  CHECK(ObfuscateQuery("SELECT 1 --") == "SELECT ?");
  CHECK(ObfuscateQuery("SELECT 1 /* unterminated 'hunter2'") == "SELECT ?");
}

TEST_CASE("ObfuscateQuery collapses lists and folds signs and booleans", "[query_text]") {
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE id IN (1, 2, 3, 4)") ==
        "SELECT * FROM t WHERE id IN (?)");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE id in ('a','b')") ==
        "SELECT * FROM t WHERE id in (?)");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE id IN ($1, $2)") ==
        "SELECT * FROM t WHERE id IN ($1, $2)");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE id = ANY(ARRAY[1,2,3])") ==
        "SELECT * FROM t WHERE id = ANY(ARRAY[?])");
  CHECK(ObfuscateQuery("INSERT INTO t VALUES (1, 2)") == "INSERT INTO t VALUES (?, ?)");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE x = -5 AND y > +1.5") ==
        "SELECT * FROM t WHERE x = ? AND y > ?");
  CHECK(ObfuscateQuery("SELECT a -1 FROM t") == "SELECT a -? FROM t");
  CHECK(ObfuscateQuery("SELECT (a)-1") == "SELECT (a)-?");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE active = TRUE AND false <> deleted") ==
        "SELECT * FROM t WHERE active = ? AND ? <> deleted");
  CHECK(ObfuscateQuery("SELECT * FROM t WHERE active IS TRUE") ==
        "SELECT * FROM t WHERE active IS TRUE");
}

TEST_CASE("Secrets never survive obfuscation", "[query_text]") {
  const char* inputs[] = {
      "WHERE password = 'hunter2'",
      "WHERE password = E'\\'hunter2'",
      "WHERE password = E'\\\\' || 'hunter2'",
      "WHERE password = $$hunter2$$",
      "WHERE password = $x$hunter2$x$",
      "WHERE password = $x$hunter2",  // unterminated dollar quote
      "WHERE password = 'hunter2",    // unterminated (truncated by track_activity_query_size)
      "WHERE password = E'hun\\'ter2",
      "WHERE password = 'x\\' AND b = 'hunter2'",
      "WHERE pin = 12345678",
      "WHERE pin = -12345678",
      "WHERE pin = 0x12345678",
      "WHERE password = U&'hunter2'",
      "WHERE password = X'68756e74657232'",
      "-- hunter2\nSELECT 1",
      "SELECT 1 /* hunter2 */",
      "SELECT 1 /* /* hunter2 */ hunter2 */",
      "CREATE ROLE r PASSWORD 'hunter2'",
      "ALTER USER u WITH PASSWORD 'hunter2'",
      "WHERE password = \"hunter2",  // unterminated quoted identifier
      "WHERE x IN ('hunter2', 'hunter2')",
      // standard_conforming_strings = off: one literal, whatever the tokenizer assumed.
      "SELECT 'x\\', hunter2, '",
      "SELECT 'a\\' , hunter2 , 'b'",
  };
  for (const char* in : inputs) {
    INFO(in);
    std::string out = ObfuscateQuery(in);
    CHECK(out.find("hunter2") == std::string::npos);
    CHECK(out.find("12345678") == std::string::npos);
    CHECK(out.find("68756e") == std::string::npos);
  }
}

TEST_CASE("A plain string holding a backslash hides the rest of the text", "[query_text]") {
  // Its end depends on the session's standard_conforming_strings, which pgvigil cannot see.
  CHECK(ObfuscateQuery("SELECT a FROM t WHERE b = 'x\\', SECRET, '") ==
        "SELECT a FROM t WHERE b = ?");
  CHECK(ObfuscateQuery("SELECT 'c:\\temp' AS p, 2") == "SELECT ?");
  // E'' strings are unambiguous; strings without a backslash too.
  CHECK(ObfuscateQuery("SELECT E'x\\'', 'y', 3") == "SELECT ?, ?, ?");
}

TEST_CASE("Length cap respects UTF-8 boundaries", "[query_text]") {
  bool truncated = false;
  CHECK(CapQueryLength("SELECT 1", 100, &truncated) == "SELECT 1");
  CHECK_FALSE(truncated);
  CHECK(CapQueryLength("SELECT abcdef", 10, &truncated) == "SELECT ...");
  CHECK(truncated);
  // "é" is two bytes; the cut must not split it.
  std::string s = "SELECT \xC3\xA9\xC3\xA9\xC3\xA9";
  for (std::size_t n = 0; n <= s.size() + 1; ++n) {
    std::string out = CapQueryLength(s, n);
    INFO(n);
    CHECK(out.size() <= n);
    CHECK(SanitizeUtf8(out) == out);
  }
  CHECK(ObfuscateQuery("SELECT a, b, c FROM tbl WHERE x = 'y'", 16) == "SELECT a, b, ...");
}

TEST_CASE("SanitizeUtf8 repairs invalid sequences", "[query_text]") {
  CHECK(SanitizeUtf8("ok \xC3\xA9") == "ok \xC3\xA9");
  CHECK(SanitizeUtf8("bad \xC3") == "bad \xEF\xBF\xBD");
  CHECK(SanitizeUtf8("bad \xFF\xFE") == "bad \xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(SanitizeUtf8(std::string("nul\0x", 5)) == "nul x");
  CHECK(SanitizeUtf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(ObfuscateQuery("SELECT \xFF\xFE FROM t") == "SELECT \xEF\xBF\xBD\xEF\xBF\xBD FROM t");
}

TEST_CASE("Fingerprint is stable across literal values", "[query_text]") {
  std::string a = ObfuscateQuery("SELECT * FROM t WHERE id = 1 AND name = 'x'");
  std::string b = ObfuscateQuery("select * from t where id = 2 and name = 'yy'");
  std::string c = ObfuscateQuery("SELECT * FROM t WHERE id = 99   AND name = 'zzz'");
  CHECK(QueryFingerprint(a) == QueryFingerprint(c));
  CHECK(QueryFingerprint(a) != QueryFingerprint(b));  // case is kept, so different texts
  CHECK(QueryFingerprint(a).size() == 16);
  CHECK(QueryFingerprint("") == "cbf29ce484222325");
  CHECK(QueryFingerprint("a") == "af63dc4c8601ec8c");
}

TEST_CASE("PrepareQueryText honours the mode", "[query_text]") {
  const std::string raw = "SELECT * FROM t WHERE password = 'hunter2'";
  QueryText obf = PrepareQueryText(raw, QueryTextMode::kObfuscated, 1000);
  QueryText none = PrepareQueryText(raw, QueryTextMode::kNone, 1000);
  QueryText rawq = PrepareQueryText(raw, QueryTextMode::kRaw, 1000);
  CHECK(obf.text == "SELECT * FROM t WHERE password = ?");
  CHECK(none.text.empty());
  CHECK(rawq.text == raw);
  CHECK(obf.fingerprint == none.fingerprint);
  CHECK(obf.fingerprint == rawq.fingerprint);
  QueryText cut = PrepareQueryText(raw, QueryTextMode::kObfuscated, 10);
  CHECK(cut.truncated);
  CHECK(cut.text.size() <= 10);
  CHECK(cut.fingerprint == obf.fingerprint);
  CHECK(std::string(QueryTextModeName(QueryTextMode::kRaw)) == "raw");
}

TEST_CASE("Obfuscator survives random bytes", "[query_text]") {
  std::mt19937 rng(12345);
  const std::string alphabet = "'\"$-/*\\eEuUbBxX&0123456789.+ \n\t(),[]INin?=<>_a\xC3\xA9\xFF\x00";
  for (int iter = 0; iter < 20000; ++iter) {
    std::size_t len = rng() % 64;
    std::string s;
    for (std::size_t i = 0; i < len; ++i) {
      s.push_back((iter % 2 == 0) ? static_cast<char>(rng() & 0xff)
                                  : alphabet[rng() % alphabet.size()]);
    }
    std::string out = ObfuscateQuery(s, 40);
    REQUIRE(out.size() <= 40);
    REQUIRE(SanitizeUtf8(out) == out);
    // Idempotent on its own output (modulo a cut).
    std::string full = ObfuscateQuery(s);
    REQUIRE(ObfuscateQuery(full) == full);
  }
  CHECK(ObfuscateQuery("").empty());
  CHECK(ObfuscateQuery("   \n ").empty());
  CHECK(ObfuscateQuery("'").size() == 1);
  CHECK(ObfuscateQuery("$").size() == 1);
  CHECK(ObfuscateQuery("E'\\") == "?");
}

TEST_CASE("QueryTraceparent reads a sqlcommenter comment outside literals", "[query_text]") {
  const std::string v = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto tp = QueryTraceparent("SELECT pg_sleep(2) /*controller='x',traceparent='" + v + "'*/");
  REQUIRE(tp);
  CHECK(tp->parent_id[0] == 0xb7);
  // Leading comments (some ORMs prepend) work too; the last parsable one wins.
  CHECK(QueryTraceparent("/*traceparent='" + v + "'*/ SELECT 1 /* not a list */"));
  // Inside a string literal or a dollar quote it is data, not a comment.
  CHECK(!QueryTraceparent("SELECT '/*traceparent=''" + v + "''*/'"));
  CHECK(!QueryTraceparent("SELECT $$ /*traceparent='" + v + "'*/ $$"));
  // A comment cut off by track_activity_query_size is not trusted.
  CHECK(!QueryTraceparent("SELECT 1 /*traceparent='" + v + "'"));
  CHECK(!QueryTraceparent("SELECT 1 -- traceparent='" + v + "'"));
  CHECK(!QueryTraceparent("SELECT 1"));
}

}  // namespace pgvigil
