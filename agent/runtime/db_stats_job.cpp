#include "runtime/db_stats_job.hpp"

#include "pgstats/db_stats_collector.hpp"
#include "runtime/traced_run.hpp"

namespace pgvigil {

DbStatsJob::DbStatsJob(const Settings& settings, DbStatsCollector& collector,
                       ConnectionSource& connections, Tracer* tracer)
    : settings_(settings), collector_(collector), connections_(connections), tracer_(tracer) {}

JobOutcome DbStatsJob::Run(JobContext& ctx) {
  DbStatsRunStatus status;
  const auto now = std::chrono::steady_clock::now();
  const bool connected = connections_.WithJobConnection(
      ctx.Bound(now + settings_.database.connect_timeout), nullptr, [&](Connection& conn) {
        RunTraced(tracer_, conn, "pgvigil.collect.db_stats", [&](const ScopedSpan&) {
          // With per-collector intervals this becomes
          // collector_.RunDue(conn, std::chrono::steady_clock::now(), ctx.window_end).
          status = collector_.RunAll(conn, ctx.Bound(std::chrono::steady_clock::now() +
                                                     settings_.sampling.statement_timeout));
          if (status.connection_lost) conn.MarkBroken();
          return status.failed == 0;
        });
      });
  if (!connected) return JobOutcome::Skipped();
  return status.failed == 0 ? JobOutcome::Done() : JobOutcome::Failed();
}

}  // namespace pgvigil
