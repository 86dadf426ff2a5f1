#pragma once
// The query-sampling jobs: ActivityJob samples pg_stat_activity every sampling.activity_interval
// (and turns long-running queries into spans), StatementsJob diffs pg_stat_statements every
// sampling.statements_interval. Both run on a job connection (ConnectionSource), each statement
// bounded by min(now + sampling.statement_timeout, the window's end).
// Not thread-safe: the scheduler thread only.
#include "config/settings.hpp"
#include "runtime/connection_source.hpp"
#include "runtime/job.hpp"

namespace pgvigil {

class QuerySampling;
class Tracer;

class ActivityJob final : public Job {
 public:
  ActivityJob(const Settings& settings, QuerySampling& sampling, ConnectionSource& connections,
              Tracer* tracer);
  std::string_view name() const override { return "activity"; }
  std::chrono::milliseconds interval() const override;
  JobOutcome Run(JobContext& ctx) override;

 private:
  const Settings& settings_;
  QuerySampling& sampling_;
  ConnectionSource& connections_;
  Tracer* tracer_;
};

class StatementsJob final : public Job {
 public:
  StatementsJob(const Settings& settings, QuerySampling& sampling, ConnectionSource& connections,
                Tracer* tracer);
  std::string_view name() const override { return "statements"; }
  std::chrono::milliseconds interval() const override;
  JobOutcome Run(JobContext& ctx) override;
  // The last window before the Neon policy lets the compute sleep, on the probe's session
  // (`held`, main pool) or the sampling pool; bounded by statement_timeout only.
  void RunLastWindow(Connection* held);

 private:
  bool RunOn(Connection& conn, std::chrono::steady_clock::time_point deadline);
  const Settings& settings_;
  QuerySampling& sampling_;
  ConnectionSource& connections_;
  Tracer* tracer_;
};

}  // namespace pgvigil
