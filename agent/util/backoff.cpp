#include "util/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <utility>

namespace pgvigil {

Millis BackoffCeiling(Millis base, Millis cap, int attempts) {
  base = std::max(base, Millis(0));
  cap = std::max(cap, Millis(0));
  // Doubling stops at the cap; the loop is bounded so it never overflows.
  Millis ceiling = base;
  for (int i = 0; i < attempts && ceiling < cap; ++i) ceiling *= 2;
  return std::min(ceiling, cap);
}

Backoff::Backoff(Millis base, Millis cap, std::function<double()> uniform)
    : Backoff(base, cap, Jitter::kFull, std::move(uniform)) {}

Backoff::Backoff(Millis base, Millis cap, Jitter jitter, std::function<double()> uniform)
    : base_(std::max(base, Millis(0))),
      cap_(std::max(cap, Millis(0))),
      jitter_(jitter),
      uniform_(std::move(uniform)) {
  if (!uniform_) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    uniform_ = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

Millis Backoff::CurrentCeiling() const { return BackoffCeiling(base_, cap_, attempts_); }

Millis Backoff::Next() {
  const Millis ceiling = CurrentCeiling();
  if (attempts_ < 62) ++attempts_;
  if (jitter_ == Jitter::kNone) return ceiling;
  const double u = std::clamp(uniform_(), 0.0, 1.0);
  const double c = static_cast<double>(ceiling.count());
  if (jitter_ == Jitter::kHalf) return Millis(std::llround(c / 2 + u * (c - c / 2)));
  return Millis(std::llround(u * c));
}

void Backoff::Reset() { attempts_ = 0; }

}  // namespace pgvigil
