#include "runtime/sampler_jobs.hpp"

#include "runtime/traced_run.hpp"
#include "sampling/long_running_spans.hpp"
#include "sampling/query_sampling.hpp"

namespace pgvigil {

namespace {
JobOutcome OutcomeOf(bool connected, bool ok) {
  if (!connected) return JobOutcome::Skipped();
  return ok ? JobOutcome::Done() : JobOutcome::Failed();
}
}  // namespace

ActivityJob::ActivityJob(const Settings& settings, QuerySampling& sampling,
                         ConnectionSource& connections, Tracer* tracer)
    : settings_(settings), sampling_(sampling), connections_(connections), tracer_(tracer) {}

std::chrono::milliseconds ActivityJob::interval() const {
  return settings_.sampling.activity_interval;
}

JobOutcome ActivityJob::Run(JobContext& ctx) {
  bool ok = false;
  const auto now = std::chrono::steady_clock::now();
  const bool connected = connections_.WithJobConnection(
      ctx.Bound(now + settings_.database.connect_timeout), nullptr, [&](Connection& conn) {
        const auto sampled_at = ctx.clock.Wall();
        ok = RunTraced(tracer_, conn, "pgvigil.sample.activity", [&](const ScopedSpan& span) {
          auto res = sampling_.RunActivity(
              conn,
              ctx.Bound(std::chrono::steady_clock::now() + settings_.sampling.statement_timeout),
              sampled_at);
          if (tracer_) {
            // Spans are a report: a failure there must not cost the session.
            ctx.guarded("activity", [&] {
              TraceLongRunningQueries(*tracer_, span, sampling_.activity(), sampled_at,
                                      settings_.sampling.query_text);
            });
          }
          return !res.error.has_value();
        });
      });
  return OutcomeOf(connected, ok);
}

StatementsJob::StatementsJob(const Settings& settings, QuerySampling& sampling,
                             ConnectionSource& connections, Tracer* tracer)
    : settings_(settings), sampling_(sampling), connections_(connections), tracer_(tracer) {}

std::chrono::milliseconds StatementsJob::interval() const {
  return settings_.sampling.statements_interval;
}

bool StatementsJob::RunOn(Connection& conn, std::chrono::steady_clock::time_point deadline) {
  return RunTraced(tracer_, conn, "pgvigil.sample.statements", [&](const ScopedSpan&) {
    auto res = sampling_.RunStatements(conn, deadline, std::chrono::system_clock::now());
    return !res.error.has_value();
  });
}

JobOutcome StatementsJob::Run(JobContext& ctx) {
  bool ok = false;
  const auto now = std::chrono::steady_clock::now();
  const bool connected = connections_.WithJobConnection(
      ctx.Bound(now + settings_.database.connect_timeout), nullptr, [&](Connection& conn) {
        ok = RunOn(conn, ctx.Bound(std::chrono::steady_clock::now() +
                                   settings_.sampling.statement_timeout));
      });
  return OutcomeOf(connected, ok);
}

void StatementsJob::RunLastWindow(Connection* held) {
  const auto now = std::chrono::steady_clock::now();
  connections_.WithJobConnection(
      now + settings_.database.connect_timeout, held, [&](Connection& conn) {
        if (conn.broken()) return;
        RunOn(conn, std::chrono::steady_clock::now() + settings_.sampling.statement_timeout);
      });
}

}  // namespace pgvigil
