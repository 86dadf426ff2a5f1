#include "db/backoff.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

TEST_CASE("Backoff: ceiling doubles up to the cap, full jitter within [0, ceiling]",
          "[db][backoff]") {
  double u = 1.0;
  Backoff b(Millis(100), Millis(1000), [&u] { return u; });
  CHECK(b.CurrentCeiling() == Millis(100));
  CHECK(b.Next() == Millis(100));  // u=1 -> the ceiling itself
  CHECK(b.CurrentCeiling() == Millis(200));
  CHECK(b.Next() == Millis(200));
  CHECK(b.Next() == Millis(400));
  CHECK(b.Next() == Millis(800));
  CHECK(b.Next() == Millis(1000));  // capped
  CHECK(b.Next() == Millis(1000));
  CHECK(b.attempts() == 6);
  u = 0.0;
  CHECK(b.Next() == Millis(0));
  u = 0.5;
  CHECK(b.Next() == Millis(500));
  b.Reset();
  CHECK(b.attempts() == 0);
  CHECK(b.CurrentCeiling() == Millis(100));
  CHECK(b.Next() == Millis(50));
}

TEST_CASE("Backoff: many attempts never overflow", "[db][backoff]") {
  Backoff b(Millis(500), Millis(30'000), [] { return 0.999; });
  for (int i = 0; i < 1000; ++i) b.Next();
  CHECK(b.CurrentCeiling() == Millis(30'000));
  CHECK(b.Next() <= Millis(30'000));
}

TEST_CASE("Backoff: the default random source stays within bounds", "[db][backoff]") {
  Backoff b(Millis(10), Millis(80));
  for (int i = 0; i < 200; ++i) {
    Millis ceiling = b.CurrentCeiling();
    Millis w = b.Next();
    CHECK(w >= Millis(0));
    CHECK(w <= ceiling);
  }
}

}  // namespace
}  // namespace pgvigil
