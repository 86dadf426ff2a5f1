#pragma once
// Series helpers that know no domain: the two shapes every database-derived family takes.
//
//   SweptGauges       a gauge family whose label sets are replaced wholesale by each successful
//                     run: sets a run did not report are removed (a dropped database leaves no
//                     stale series), Clear() removes them all (the data source went away).
//   CumulativeCounter a counter fed with a cumulative value kept by the server.
//
// The one reset policy (CounterGrowth): a reading below the previous one means the source was
// reset (stats reset, server or compute restart, pool recreated), so the whole new reading is
// growth since then. CumulativeCounter applies it in one of two presentations:
//   kAccumulate      the series only grows, by the growth; it survives resets (pgvigil_* names),
//   kFollowSource    the series shows the source's value; on a reset it is recreated at the new
//                    value, which Prometheus' rate() reads as a counter reset (the
//                    postgres_exporter-compatible pg_* names, whose absolute values dashboards
//                    show).
// Not thread-safe for writers (one owner thread); scraping is safe (prometheus-cpp is atomic).
// The registry must outlive them.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <optional>
#include <string>
#include <unordered_set>

namespace pgvigil {

// Growth of a cumulative value from `before` (nullopt = first reading: all of it) to `now`.
double CounterGrowth(std::optional<double> before, double now);

class SweptGauges {
 public:
  SweptGauges(prometheus::Registry& r, const std::string& name, const std::string& help);
  void Set(const prometheus::Labels& labels, double v);
  // Call after a successful run: forgets the sets this run did not report.
  void Sweep();
  // Removes every series (and what the current run reported so far).
  void Clear();

 private:
  prometheus::Family<prometheus::Gauge>* family_;
  // The family's own series, by address: no second copy of every label set.
  std::unordered_set<prometheus::Gauge*> live_, seen_;
};

class CumulativeCounter {
 public:
  enum class Presentation { kAccumulate, kFollowSource };
  CumulativeCounter(prometheus::Registry& r, const std::string& name, const std::string& help,
                    Presentation presentation);
  // A new reading of the source's cumulative value; negative readings are ignored.
  void Observe(double v);
  // kFollowSource: the series goes, and its baseline. kAccumulate: nothing (the total and its
  // baseline stay, so a later reading adds only its growth, or all of it after a reset).
  void Clear();

 private:
  prometheus::Family<prometheus::Counter>* family_;
  Presentation presentation_;
  std::optional<double> last_;
};

}  // namespace pgvigil
