#include "telemetry/series.hpp"

namespace pgvigil {

double CounterGrowth(std::optional<double> before, double now) {
  if (!before) return now;
  return now >= *before ? now - *before : now;
}

SweptGauges::SweptGauges(prometheus::Registry& r, const std::string& name, const std::string& help)
    : family_(&prometheus::BuildGauge().Name(name).Help(help).Register(r)) {}

void SweptGauges::Set(const prometheus::Labels& labels, double v) {
  prometheus::Gauge& g = family_->Add(labels);
  g.Set(v);
  seen_.insert(&g);
}

void SweptGauges::Sweep() {
  for (prometheus::Gauge* g : live_) {
    if (seen_.count(g) == 0) family_->Remove(g);
  }
  live_.swap(seen_);
  seen_.clear();
}

void SweptGauges::Clear() {
  seen_.clear();
  Sweep();
}

CumulativeCounter::CumulativeCounter(prometheus::Registry& r, const std::string& name,
                                     const std::string& help, Presentation presentation)
    : family_(&prometheus::BuildCounter().Name(name).Help(help).Register(r)),
      presentation_(presentation) {
  // kAccumulate series exist from the start (at 0); kFollowSource ones from the first reading.
  if (presentation_ == Presentation::kAccumulate) family_->Add({});
}

void CumulativeCounter::Observe(double v) {
  if (v < 0) return;
  const bool reset = last_ && v < *last_;
  if (reset && presentation_ == Presentation::kFollowSource) family_->Remove(&family_->Add({}));
  const double growth = CounterGrowth(last_, v);
  auto& counter = family_->Add({});
  if (growth > 0) counter.Increment(growth);
  last_ = v;
}

void CumulativeCounter::Clear() {
  if (presentation_ != Presentation::kFollowSource) return;
  last_.reset();
  family_->Remove(&family_->Add({}));
}

}  // namespace pgvigil
