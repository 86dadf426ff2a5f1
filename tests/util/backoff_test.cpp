#include "util/backoff.hpp"

#include <catch2/catch.hpp>

namespace pgvigil {
namespace {

TEST_CASE("Backoff: ceiling doubles up to the cap, full jitter within [0, ceiling]",
          "[util][backoff]") {
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

TEST_CASE("Backoff: many attempts never overflow", "[util][backoff]") {
  Backoff b(Millis(500), Millis(30'000), [] { return 0.999; });
  for (int i = 0; i < 1000; ++i) b.Next();
  CHECK(b.CurrentCeiling() == Millis(30'000));
  CHECK(b.Next() <= Millis(30'000));
}

TEST_CASE("Backoff: the default random source stays within bounds", "[util][backoff]") {
  Backoff b(Millis(10), Millis(80));
  for (int i = 0; i < 200; ++i) {
    Millis ceiling = b.CurrentCeiling();
    Millis w = b.Next();
    CHECK(w >= Millis(0));
    CHECK(w <= ceiling);
  }
}

TEST_CASE("Backoff: half jitter stays in the upper half; none is the ceiling", "[util][backoff]") {
  double u = 0.0;
  Backoff half(Millis(100), Millis(400), Jitter::kHalf, [&u] { return u; });
  CHECK(half.Next() == Millis(50));  // ceiling 100, u = 0: its half
  u = 1.0;
  CHECK(half.Next() == Millis(200));  // ceiling 200, u = 1: all of it
  u = 0.5;
  CHECK(half.Next() == Millis(300));  // ceiling 400: 200 + 0.5 * 200
  CHECK(half.Next() == Millis(300));  // capped

  Backoff none(Millis(30), Millis(100), Jitter::kNone);
  CHECK(none.Next() == Millis(30));
  CHECK(none.Next() == Millis(60));
  CHECK(none.Next() == Millis(100));
}

TEST_CASE("BackoffCeiling: the Neon API pacer's doubling", "[util][backoff]") {
  CHECK(BackoffCeiling(Millis(1000), Millis(300'000), 0) == Millis(1000));
  CHECK(BackoffCeiling(Millis(1000), Millis(300'000), 3) == Millis(8000));
  CHECK(BackoffCeiling(Millis(1000), Millis(300'000), 1000) == Millis(300'000));
  CHECK(BackoffCeiling(Millis(1000), Millis(500), 0) == Millis(500));
}

}  // namespace
}  // namespace pgvigil
