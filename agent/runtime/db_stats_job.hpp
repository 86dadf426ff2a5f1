#pragma once
// DbStatsJob: the database statistics (pgstats/DbStatsCollector, postgres_exporter's names) as a
// job on a job connection: RunDue runs the collectors that are due (each has its own interval
// and timeout, stats.intervals / stats.timeouts; the cheap ones due together as one bundle
// statement), each statement bounded by min(its timeout, the window's end); collectors that do
// not fit the window run in the next one, and the job comes back when the next collector is due.
// Skipped while the database is not ready (a Neon compute may sleep).
// Not thread-safe: the scheduler thread only.
#include "config/settings.hpp"
#include "runtime/connection_source.hpp"
#include "runtime/job.hpp"

namespace pgvigil {

class DbStatsCollector;
class Tracer;

class DbStatsJob final : public Job {
 public:
  DbStatsJob(const Settings& settings, DbStatsCollector& collector, ConnectionSource& connections,
             Tracer* tracer);
  std::string_view name() const override { return "db_stats"; }
  std::chrono::milliseconds interval() const override { return settings_.stats.interval; }
  JobOutcome Run(JobContext& ctx) override;

 private:
  const Settings& settings_;
  DbStatsCollector& collector_;
  ConnectionSource& connections_;
  Tracer* tracer_;
};

}  // namespace pgvigil
