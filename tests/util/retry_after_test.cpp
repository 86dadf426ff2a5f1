#include "util/retry_after.hpp"

#include <catch2/catch.hpp>

#include "util/time_format.hpp"

namespace pgvigil {

TEST_CASE("ParseRetryAfter: seconds or HTTP-date", "[util]") {
  auto now = *ParseRfc3339("2015-10-21T07:27:00Z");
  CHECK(ParseRetryAfter("7", now) == Millis(7000));
  CHECK(ParseRetryAfter(" 0 ", now) == Millis(0));
  CHECK(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now) == Millis(60'000));
  CHECK(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now) == Millis(0));
  CHECK_FALSE(ParseRetryAfter("soon", now));
  CHECK_FALSE(ParseRetryAfter("-5", now));
  CHECK_FALSE(ParseRetryAfter("", now));
}

TEST_CASE("ParseRetryAfter: huge or odd values stay bounded", "[util]") {
  auto now = *ParseRfc3339("2015-10-21T07:27:00Z");
  CHECK(ParseRetryAfter("99999999999999", now) == Millis(365LL * 24 * 3600 * 1000));
  CHECK_FALSE(ParseRetryAfter("7s", now));
  CHECK_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00", now));  // no GMT
}

}  // namespace pgvigil
