#pragma once
// Collector: one database statistics collector — one concern, its own metric families, its own
// cadence. DbStatsCollector (db_stats_collector.hpp) runs them; AllCollectors() is the one list.
// Adding a collector is one new file in collectors/ plus one line in collectors/all.cpp.
//
// Contract: Collect runs read-only statements tagged /* pgvigil */, pooler-safe (no SET, no
// PREPARE, no temp objects), each bounded by `deadline`, and publishes into its families only on
// success (a failed run leaves the last values). It returns the first error, scrubbed (DbError).
// Forget() removes every series it exports (the database is down or asleep, or this replica is
// not the leader). Not thread-safe: called by the scheduler thread only.
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/db_error.hpp"

namespace pgvigil {

// Caps the number of databases (and so of series) one server can produce.
inline constexpr int kMaxDatabases = 256;

class Collector {
 public:
  virtual ~Collector() = default;
  // The `collector` label of pgvigil_collector_* and the key of stats.intervals/stats.timeouts.
  virtual const char* name() const = 0;
  // The least interval by default, set by cost: the effective default is
  // max(stats.interval, this); 0 = the cheap counters, at stats.interval.
  virtual std::chrono::milliseconds min_interval() const { return std::chrono::milliseconds{0}; }
  virtual std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) = 0;
  virtual void Forget() = 0;
};

using CollectorFactory = std::unique_ptr<Collector> (*)(prometheus::Registry&);

// Every collector, in run order (cheap and most watched first).
std::vector<CollectorFactory> AllCollectors();

// Runs `sql` and hands the result to `use`; the error otherwise.
std::optional<DbError> CollectorQuery(Connection& conn, const std::string& sql,
                                      const std::vector<std::string>& params, SteadyTime deadline,
                                      const std::function<void(const QueryResult&)>& use);
// A numeric cell, 0 when NULL or not a number.
inline double CellNumber(const QueryResult& r, int row, int col) {
  return r.Double(row, col).value_or(0);
}

}  // namespace pgvigil
