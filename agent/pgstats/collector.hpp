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
//
// The bundle: a cheap collector whose run is one parameterless statement (OneStatementCollector)
// gives that statement through BundleSql, and DbStatsCollector may send it together with the
// other due ones as one statement (collector_bundle.hpp); Publish then reads the collector's part
// of the reply through the same RowSet code as Collect. A collector with parameters or more than
// one statement keeps BundleSql's nullopt and always runs alone.
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/db_error.hpp"
#include "pgstats/row_set.hpp"

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
  // This run's statement for the bundle, or nullopt: this run goes alone (Collect). `conn` is
  // read for its server version only.
  virtual std::optional<std::string> BundleSql(const Connection& conn) const;
  // Publishes from the rows of BundleSql's statement as Collect would, and returns its error.
  // May run a further statement of its own on `conn` before `deadline` (neon_lfc, once, when it
  // has just found its view).
  virtual std::optional<DbError> Publish(const RowSet& rows, Connection& conn, SteadyTime deadline);
};

// A collector whose run is one parameterless statement: Collect runs Sql alone and hands its
// rows to Read; in the bundle, Read gets its part of the reply. Column names must be distinct
// (the bundle carries each row as a JSON object), and columns text, numbers or booleans (JSON
// writes those as PostgreSQL's text would; a timestamp it writes in ISO 8601, with a 'T').
class OneStatementCollector : public Collector {
 public:
  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) final;
  std::optional<std::string> BundleSql(const Connection& conn) const final { return Sql(conn); }
  std::optional<DbError> Publish(const RowSet& rows, Connection&, SteadyTime) final {
    Read(rows);
    return std::nullopt;
  }

 protected:
  virtual std::string Sql(const Connection& conn) const = 0;
  virtual void Read(const RowSet& rows) = 0;
};

using CollectorFactory = std::unique_ptr<Collector> (*)(prometheus::Registry&);

// Every collector, in run order (cheap and most watched first).
std::vector<CollectorFactory> AllCollectors();

// Runs `sql` and hands the result to `use`; the error otherwise.
std::optional<DbError> CollectorQuery(Connection& conn, const std::string& sql,
                                      const std::vector<std::string>& params, SteadyTime deadline,
                                      const std::function<void(const RowSet&)>& use);
// A numeric cell, 0 when NULL or not a number.
inline double CellNumber(const RowSet& r, int row, int col) {
  return r.Double(row, col).value_or(0);
}

}  // namespace pgvigil
