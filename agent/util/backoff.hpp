#pragma once
// Exponential backoff, one shape for every retry loop (reconnects, span export, Neon API polls):
// the n-th wait's ceiling is min(cap, base * 2^n), and the wait is drawn from it by `Jitter`:
//   kFull  uniform in [0, ceiling]          (AWS "full jitter": reconnect storms spread out)
//   kHalf  uniform in [ceiling/2, ceiling]  (spread, but never collapses to zero)
//   kNone  the ceiling itself               (a pacer that must be predictable)
// Not thread-safe; one per retry loop. Random source injectable.
#include <functional>

#include "util/time.hpp"

namespace pgvigil {

enum class Jitter { kFull, kHalf, kNone };

// min(cap, base * 2^attempts), without overflow; base and cap below 0 count as 0.
Millis BackoffCeiling(Millis base, Millis cap, int attempts);

class Backoff {
 public:
  // `uniform` returns a value in [0, 1); defaults to a seeded std::mt19937_64.
  Backoff(Millis base, Millis cap, std::function<double()> uniform = {});
  Backoff(Millis base, Millis cap, Jitter jitter, std::function<double()> uniform = {});
  Millis Next();  // the wait before the next attempt; grows the exponent
  void Reset();   // after a success
  int attempts() const { return attempts_; }
  Millis CurrentCeiling() const;  // min(cap, base * 2^attempts)

 private:
  Millis base_, cap_;
  Jitter jitter_ = Jitter::kFull;
  int attempts_ = 0;
  std::function<double()> uniform_;
};

}  // namespace pgvigil
