#pragma once
// Exponential backoff with full jitter (AWS architecture blog): the n-th wait is uniform in
// [0, min(cap, base * 2^n)]. Not thread-safe; one per retry loop. Random source injectable.
#include <chrono>
#include <cstdint>
#include <functional>

#include "config/duration.hpp"

namespace pgvigil {

class Backoff {
 public:
  // `uniform` returns a value in [0, 1); defaults to a seeded std::mt19937_64.
  Backoff(Millis base, Millis cap, std::function<double()> uniform = {});
  Millis Next();  // the wait before the next attempt; grows the exponent
  void Reset();   // after a success
  int attempts() const { return attempts_; }
  Millis CurrentCeiling() const;  // min(cap, base * 2^attempts)

 private:
  Millis base_, cap_;
  int attempts_ = 0;
  std::function<double()> uniform_;
};

}  // namespace pgvigil
