#include "runtime/probe_job.hpp"

#include "neon/neon_watch.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"
#include "util/log.hpp"

namespace pgvigil {

namespace {
PolicyTime PolicyNow(const Clock& clock) { return {clock.Steady(), clock.Wall()}; }
}  // namespace

ProbeJob::ProbeJob(const Settings& settings, ProbeSource& source, AgentMetrics& metrics,
                   NeonWatch* neon, Tracer* tracer)
    : settings_(settings),
      source_(source),
      metrics_(metrics),
      neon_(neon),
      tracer_(tracer),
      health_(settings.probe) {}

bool ProbeJob::OnTurn(const Clock& clock, bool woken) {
  if (neon_) {
    if (woken) Apply(neon_->OnWakeRequest(PolicyNow(clock)), clock);
    Apply(neon_->Tick(PolicyNow(clock)), clock);
  }
  return std::exchange(probe_now_, false);
}

JobOutcome ProbeJob::Run(JobContext& ctx, const TickTraffic* traffic) {
  const Clock& clock = ctx.clock;
  if (!probing_) return {JobOutcome::Kind::kSkipped, clock.Steady() + interval()};
  // While the pool backs off after a failed connect, look again when it allows.
  const auto allowed = source_.NextConnectAllowed();
  if (!ctx.woken && allowed > clock.Steady()) return {JobOutcome::Kind::kSkipped, allowed};
  Cycle(clock, traffic);
  probe_now_ = false;  // a probe just ran: the next one keeps the interval
  return {last_ok_ ? JobOutcome::Kind::kDone : JobOutcome::Kind::kFailed,
          clock.Steady() + interval()};
}

void ProbeJob::Apply(const Decision& d, const Clock& clock) {
  if (d.close_pool) {
    source_.CloseAll("suspend");
    neon_->OnPoolClosed();
  }
  probing_ = d.probing;
  if (!probing_ && on_database_lost_) on_database_lost_("pgvigil lets the Neon compute sleep");
  bool changed = false;
  const auto before = health_.state();
  if (d.compute_unknown) {
    // Not probing and the API fails: do not keep showing the last `up`.
    if (health_.state() != DbState::kIdle || health_.reason() != d.reason) {
      changed = health_.SetIdle(d.reason);
    }
  } else if (d.state == PolicyState::kIdle) {
    if (health_.state() != DbState::kIdle || health_.reason() != d.reason) {
      changed = health_.SetIdle(d.reason);
    }
  } else if (d.state == PolicyState::kGoingIdle && health_.state() == DbState::kIdle &&
             health_.reason() != d.reason) {
    changed = health_.SetIdle(d.reason);  // the API answers again: say what we know
  } else if (d.state == PolicyState::kWaking) {
    if (health_.state() != DbState::kWaking) changed = health_.SetWaking();
  }
  if (changed) {
    metrics_.SetState(health_.state(), true);
    LogInfo("database state changed", {{"from", std::string(DbStateName(before))},
                                       {"to", std::string(DbStateName(health_.state()))},
                                       {"reason", health_.reason()}});
  }
  if (d.probe_now) probe_now_ = true;
  (void)clock;
}

void ProbeJob::Observe(const ProbeResult& r, bool count_failure) {
  const auto before = health_.state();
  metrics_.RecordProbe(r);
  if (!r.ok && !count_failure) return;  // a cold start still within wake_timeout
  const bool changed = health_.Observe(r);
  metrics_.SetState(health_.state(), changed);
  if (changed) {
    const auto level = DbStateUsable(health_.state()) ? LogLevelValue::kInfo : LogLevelValue::kWarn;
    Log(level, "database state changed",
        {{"from", std::string(DbStateName(before))},
         {"to", std::string(DbStateName(health_.state()))},
         {"reason", health_.reason()},
         {"target", settings_.database.conn.Redacted()}});
  } else if (!r.ok) {
    LogDebug("probe failed",
             {{"state", std::string(DbStateName(health_.state()))}, {"reason", health_.reason()}});
  }
}

// One probe: connect if needed, the probe statement under its deadline (or, by traffic, what the
// jobs that ran first in this tick found: ProbeSource), then the Neon policy
// (activity check on the same session), all traced. The session goes back on every path (and is
// discarded when something throws: see Pool::Lease).
void ProbeJob::Cycle(const Clock& clock, const TickTraffic* traffic) {
  struct EndSession {
    ProbeSource& source;
    ~EndSession() { source.EndSession(); }
  } end_session{source_};
  ScopedSpan root;
  if (tracer_) {
    root = tracer_->StartSpan("pgvigil.probe", SpanKind::kInternal);
    root.SetAttribute("pgvigil.db_state.before", std::string(DbStateName(health_.state())));
  }
  const bool was_idle = health_.state() == DbState::kIdle || health_.state() == DbState::kWaking;
  // A cold start may take longer than a normal connect: while the compute is asleep or waking
  // the connect gets neon.wake_timeout when that is longer than database.connect_timeout.
  std::optional<Millis> connect_timeout;
  if (neon_ && was_idle) {
    connect_timeout = std::max(settings_.database.connect_timeout, settings_.neon.wake_timeout);
  }
  const ProbeAttempt a = source_.Probe(connect_timeout, root, traffic);
  const ProbeResult& r = a.result;

  bool count_failure = true;
  // Neon ends sessions with 57P01/57P02 when it suspends or restarts a compute: on a session
  // pgvigil already had, that is expected, not a database failure.
  const bool terminated = neon_ && a.connected && !r.ok && !r.new_connection && r.error &&
                          r.error->kind == ErrorKind::kAdminShutdown;
  if (terminated) {
    Decision d = neon_->OnSessionTerminated(PolicyNow(clock), *r.error);
    count_failure = false;
    root.SetAttribute("pgvigil.session_terminated", true);
    source_.EndSession();
    Apply(d, clock);
  } else if (neon_) {
    const auto now = PolicyNow(clock);
    if (r.new_connection || !a.connected) {
      Decision d = neon_->OnConnect(now, a.connected, r.connect_duration);
      count_failure = d.count_failures;
      if (d.cold_start)
        root.SetAttribute("pgvigil.cold_start_seconds",
                          std::chrono::duration<double>(*d.cold_start).count());
      Apply(d, clock);
    }
    Decision d = neon_->AfterProbe(now, r.ok, source_.session(), source_.OwnUsageNow(),
                                   std::chrono::steady_clock::now() + settings_.probe.timeout);
    count_failure = count_failure && d.count_failures;
    if (a.connected && d.close_pool && r.ok && last_window_) {
      // pg_stat_statements empties when the compute restarts: take the last window now.
      last_window_(source_.session());
    }
    if (d.close_pool) source_.EndSession();
    Apply(d, clock);
  }
  Observe(r, count_failure);
  last_ok_ = r.ok;
  if (!r.ok && on_database_lost_) on_database_lost_("the probe failed");
  if (r.ok) {
    root.SetOk();
  } else if (r.error) {
    // The probe is INTERNAL: no db.response.status_code, but the same error.type as its call.
    const std::string_view kind = ErrorKindName(r.error->kind);
    root.SetError(r.error->sqlstate.empty() ? kind : std::string_view(r.error->sqlstate),
                  r.error->message);
    root.SetAttribute("pgvigil.error.kind", kind);
  }
  root.SetAttribute("pgvigil.db_state.after", std::string(DbStateName(health_.state())));
  root.End();
}

}  // namespace pgvigil
