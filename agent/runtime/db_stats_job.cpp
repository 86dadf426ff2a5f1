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
          // The collectors that are due, each under min(its own timeout, the window's end);
          // one that does not fit the rest of the window runs in the next one.
          status = collector_.RunDue(conn, std::chrono::steady_clock::now(), ctx.window_end);
          if (status.connection_lost) conn.MarkBroken();
          return status.failed == 0;
        });
      });
  if (!connected) return JobOutcome::Skipped();
  if (status.connection_lost || status.failed > 0) return JobOutcome::Failed();
  if (status.skipped > 0) return JobOutcome::MoreToDo();
  // Each collector keeps its own interval: come back when the next one is due.
  JobOutcome out = JobOutcome::Done();
  out.next_run = collector_.NextDue();
  return out;
}

}  // namespace pgvigil
