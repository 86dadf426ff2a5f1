#pragma once
// DbStatsJob: the database statistics (pgstats/DbStatsCollector, postgres_exporter's names) as a
// job, every stats.interval on a job connection, each collector's statement bounded by
// min(its query_timeout, the window's end). Skipped while the database is not ready (a Neon
// compute may sleep).
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
