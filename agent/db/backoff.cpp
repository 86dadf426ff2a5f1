#include "db/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <utility>

namespace pgvigil {

Backoff::Backoff(Millis base, Millis cap, std::function<double()> uniform)
    : base_(std::max(base, Millis(0))),
      cap_(std::max(cap, Millis(0))),
      uniform_(std::move(uniform)) {
  if (!uniform_) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    uniform_ = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

Millis Backoff::CurrentCeiling() const {
  // Doubling stops at the cap; the shift is bounded so it never overflows.
  Millis ceiling = base_;
  for (int i = 0; i < attempts_ && ceiling < cap_; ++i) ceiling *= 2;
  return std::min(ceiling, cap_);
}

Millis Backoff::Next() {
  Millis ceiling = CurrentCeiling();
  double u = std::clamp(uniform_(), 0.0, 1.0);
  if (attempts_ < 62) ++attempts_;
  return Millis(std::llround(u * static_cast<double>(ceiling.count())));
}

void Backoff::Reset() { attempts_ = 0; }

}  // namespace pgvigil
