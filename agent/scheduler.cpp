#include "scheduler.hpp"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>

#include "fleet/stats_leader.hpp"
#include "health/prober.hpp"
#include "neon/neon_target.hpp"
#include "neon_watch.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "sampling/query_sampling.hpp"
#include "tracing/otlp_exporter.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

namespace {
constexpr auto kHeartbeat = std::chrono::seconds(1);

SpanTime WallNow() { return std::chrono::system_clock::now(); }

// The sampling pool needs one connection: the samplers run one after the other.
PoolSettings SamplingPoolSettings(PoolSettings p) {
  p.size = 1;
  return p;
}
}  // namespace

Scheduler::Scheduler(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
                     AgentMetrics& metrics, SchedulerParts parts)
    : settings_(settings),
      snapshots_(snapshots),
      lifecycle_(lifecycle),
      metrics_(metrics),
      parts_(parts),
      pool_(settings.pool, NeonConnParams(settings.neon, settings.database.conn),
            settings.database.connect_timeout, {}, &abort_),
      health_(settings.probe) {
  if (settings.neon.sampling_conn) {
    sampling_pool_.emplace(SamplingPoolSettings(settings.pool),
                           NeonConnParams(settings.neon, *settings.neon.sampling_conn),
                           settings.database.connect_timeout, Pool::Clock{}, &abort_);
  }
  // One turn may legitimately sit in a connect, the probe, an API call and the samplers;
  // /livez must not call that dead.
  lifecycle_.heartbeat_stale_after = std::max<std::chrono::nanoseconds>(
      std::chrono::seconds(30),
      3 * (settings.database.connect_timeout + settings.probe.timeout +
           2 * settings.sampling.statement_timeout + settings.neon.wake_timeout));
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  lifecycle_.Beat();
  Publish();
  thread_ = std::jthread([this](std::stop_token st) { Run(st); });
}

void Scheduler::Stop() {
  if (!thread_.joinable()) return;
  // Ends a connect or query in flight at once (a frozen server would hold it to its deadline),
  // so shutdown stays within http.shutdown_timeout.
  abort_.Trigger();
  thread_.request_stop();
  wake_cv_.notify_all();
  thread_.join();
}

void Scheduler::RequestWake() {
  {
    std::lock_guard lock(wake_mu_);
    wake_requested_ = true;
  }
  wake_cv_.notify_all();
}

void Scheduler::WaitUntil(std::stop_token& stop, SteadyClock::time_point t) {
  std::unique_lock lock(wake_mu_);
  wake_cv_.wait_until(lock, stop, std::min(t, SteadyClock::now() + kHeartbeat),
                      [this] { return wake_requested_; });
}

void Scheduler::Apply(const Decision& d) {
  if (d.close_pool) {
    pool_.CloseAll("suspend");
    if (sampling_pool_) sampling_pool_->CloseAll("suspend");
    parts_.neon->OnPoolClosed();
  }
  probing_ = d.probing;
  if (!probing_) {
    ForgetDatabaseSeries();
    if (parts_.leader) parts_.leader->OnDatabaseLost("pgvigil lets the Neon compute sleep");
  }
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
  if (d.probe_now) next_probe_ = SteadyClock::now();
}

void Scheduler::Run(std::stop_token stop) {
  next_probe_ = SteadyClock::now();
  while (!stop.stop_requested()) {
    lifecycle_.Beat();
    if (!Guarded("scheduler", [this] { Turn(); })) {
      // Whatever threw may throw again at once: wait a probe interval, do not spin.
      next_probe_ = std::max(next_probe_, SteadyClock::now() + settings_.probe.interval);
    }
    Guarded("publish", [this] { Publish(); });
    auto wake_at = next_probe_;
    if (!probing_) wake_at = SteadyClock::now() + kHeartbeat;
    WaitUntil(stop, wake_at);
  }
  Guarded("scheduler", [this] {
    pool_.CloseAll("shutdown");
    if (sampling_pool_) sampling_pool_->CloseAll("shutdown");
  });
  Guarded("publish", [this] { Publish(); });
}

void Scheduler::Turn() {
  bool woken = false;
  {
    std::lock_guard lock(wake_mu_);
    woken = std::exchange(wake_requested_, false);
  }
  if (parts_.neon) {
    if (woken) Apply(parts_.neon->OnWakeRequest(PolicyTime::Now()));
    Apply(parts_.neon->Tick(PolicyTime::Now()));
    lifecycle_.Beat();
  }
  const auto now = SteadyClock::now();
  if (probing_ && (now >= next_probe_ || woken)) {
    // While the pool backs off after a failed connect, look again when it allows.
    const auto allowed = pool_.NextConnectAllowed();
    if (woken || allowed <= SteadyClock::now()) {
      next_probe_ = SteadyClock::now() + settings_.probe.interval;
      Guarded("probe", [&] { Cycle(woken); });
      next_probe_ = SteadyClock::now() + settings_.probe.interval;
    } else {
      next_probe_ = allowed;
    }
  }
  pool_.Maintain();
  if (sampling_pool_) sampling_pool_->Maintain();
}

bool Scheduler::Guarded(const char* component, const std::function<void()>& fn) {
  std::string what;
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  // Counting and logging must not throw in turn (they only allocate small strings).
  try {
    ++internal_errors_[component];
    metrics_.RecordInternalError(component);
    last_internal_error_ = std::string(component) + ": " + what;
    last_internal_error_at_ = std::chrono::system_clock::now();
    LogError("internal error caught; pgvigil goes on", {{"component", component}, {"error", what}});
  } catch (...) {
  }
  return false;
}

std::string Scheduler::InternalErrorsJson() const {
  nlohmann::json j;
  std::uint64_t total = 0;
  nlohmann::json by = nlohmann::json::object();
  for (const auto& [component, n] : internal_errors_) {
    by[component] = n;
    total += n;
  }
  j["total"] = total;
  j["by_component"] = std::move(by);
  j["last"] =
      last_internal_error_.empty() ? nlohmann::json() : nlohmann::json(last_internal_error_);
  j["last_at"] = last_internal_error_at_
                     ? nlohmann::json(FormatRfc3339Utc(*last_internal_error_at_))
                     : nlohmann::json();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Scheduler::ObserveProbe(const ProbeResult& r, bool count_failure) {
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

// One probe cycle: connect if needed, SELECT 1 under its deadline, then the Neon activity check
// and whatever samplers are due, all on the same connection, all traced.
void Scheduler::Cycle(bool probe_now) {
  (void)probe_now;
  const auto& conn_params = settings_.database.conn;
  ScopedSpan root;
  if (parts_.tracer) {
    root = parts_.tracer->StartSpan("pgvigil.probe", SpanKind::kInternal);
    root.SetAttribute("pgvigil.db_state.before", std::string(DbStateName(health_.state())));
  }
  const bool was_idle = health_.state() == DbState::kIdle || health_.state() == DbState::kWaking;
  const auto started_wall = WallNow();
  const auto started = SteadyClock::now();

  // A cold start may take longer than a normal connect: while the compute is asleep or waking
  // the connect gets neon.wake_timeout when that is longer than database.connect_timeout.
  std::optional<Millis> connect_timeout;
  if (parts_.neon && was_idle) {
    connect_timeout = std::max(settings_.database.connect_timeout, settings_.neon.wake_timeout);
  }
  ProbeResult r;
  auto lease = pool_.Acquire(SteadyClock::time_point::max(), connect_timeout);
  // Should anything below throw, the connection still goes back (broken), or the pool would
  // stay checked out and the probe stop for good.
  struct GiveBack {
    Pool& pool;
    std::optional<Pool::Lease>& lease;
    int uncaught = std::uncaught_exceptions();
    ~GiveBack() {
      if (!lease) return;
      if (std::uncaught_exceptions() > uncaught) lease->conn().MarkBroken();
      pool.Release(std::move(*lease));
      lease.reset();
    }
  } give_back{pool_, lease.value};
  if (lease.ok() && lease.value->info().new_connection && parts_.tracer) {
    auto connect = StartDbClientSpan(
        *parts_.tracer,
        {conn_params.Database(), "connect", "", conn_params.Host(), conn_params.Port()}, &root,
        started_wall);
    connect.SetAttribute("pgvigil.cold_start", was_idle);
    connect.End(started_wall + std::chrono::duration_cast<SpanTime::duration>(
                                   lease.value->info().connect_duration));
  }
  if (!lease.ok()) {
    r.at = std::chrono::system_clock::now();
    r.latency = SteadyClock::now() - started;
    r.error = lease.error;
    if (parts_.tracer) {
      auto connect = StartDbClientSpan(
          *parts_.tracer,
          {conn_params.Database(), "connect", "", conn_params.Host(), conn_params.Port()}, &root,
          started_wall);
      connect.SetDbError(r.error->sqlstate, r.error->message, ErrorKindName(r.error->kind));
    }
  } else {
    r.new_connection = lease.value->info().new_connection;
    r.connect_duration = lease.value->info().connect_duration;
    ScopedSpan query;
    std::string sql = kProbeSql;
    if (parts_.tracer) {
      query = StartDbClientSpan(
          *parts_.tracer,
          {conn_params.Database(), "SELECT", "SELECT ?", conn_params.Host(), conn_params.Port()},
          &root);
      sql = SqlCommenter(sql, query.Traceparent());
    }
    const auto query_start = SteadyClock::now();
    auto res = lease.value->conn().Exec(sql, query_start + settings_.probe.timeout);
    r.latency = SteadyClock::now() - query_start;
    r.at = std::chrono::system_clock::now();
    if (res.ok() && res.value->Rows() == 1 && res.value->Text(0, 0) == "1") {
      r.ok = true;
      query.SetOk();
    } else {
      r.error = res.error.value_or(
          DbError{ErrorKind::kProtocol, "", "probe returned an unexpected result"});
      query.SetDbError(r.error->sqlstate, r.error->message, ErrorKindName(r.error->kind));
    }
  }

  bool count_failure = true;
  // Neon ends sessions with 57P01/57P02 when it suspends or restarts a compute: on a session
  // pgvigil already had, that is expected, not a database failure.
  const bool terminated = parts_.neon && lease.ok() && !r.ok && !r.new_connection && r.error &&
                          r.error->kind == ErrorKind::kAdminShutdown;
  if (terminated) {
    Decision d = parts_.neon->OnSessionTerminated(PolicyTime::Now(), *r.error);
    count_failure = false;
    root.SetAttribute("pgvigil.session_terminated", true);
    pool_.Release(std::move(*lease.value));
    lease.value.reset();
    Apply(d);
  } else if (parts_.neon) {
    const auto now = PolicyTime::Now();
    if (r.new_connection || !lease.ok()) {
      Decision d = parts_.neon->OnConnect(now, lease.ok(), r.connect_duration);
      count_failure = d.count_failures;
      if (d.cold_start)
        root.SetAttribute("pgvigil.cold_start_seconds",
                          std::chrono::duration<double>(*d.cold_start).count());
      Apply(d);
    }
    Decision d =
        parts_.neon->AfterProbe(now, r.ok, lease.ok() ? &lease.value->conn() : nullptr,
                                OwnUsageNow(), SteadyClock::now() + settings_.probe.timeout);
    count_failure = count_failure && d.count_failures;
    if (lease.ok() && d.close_pool && r.ok) {
      // pg_stat_statements empties when the compute restarts: take the last window now.
      next_statements_ = SteadyClock::now();
      RunSamplers(lease.value->conn());
    }
    if (lease.ok() && d.close_pool) {
      pool_.Release(std::move(*lease.value));
      lease.value.reset();
    }
    Apply(d);
  }
  ObserveProbe(r, count_failure);
  if (!r.ok) {
    ForgetDatabaseSeries();
    if (parts_.leader) parts_.leader->OnDatabaseLost("the probe failed");
  }
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

  if (lease.ok() && lease.value) {
    if (r.ok && probing_) RunSamplers(lease.value->conn());
    pool_.Release(std::move(*lease.value));
    lease.value.reset();
  }
}

// Every connection pgvigil opened to a database Neon counts, and the time its statements took
// there: the activity check must not take pgvigil's own work (the sampling pool's included) for
// an application's.
OwnUsage Scheduler::OwnUsageNow() const {
  OwnUsage own;
  auto add = [&own](const Pool& pool, const ConnParams& params) {
    if (NeonExcludedDatabase(params.Database())) return;
    const PoolStats st = pool.Stats();
    own.connects += st.opened_total;
    own.exec_ms += st.exec_seconds_total * 1000.0;
  };
  add(pool_, settings_.database.conn);
  if (sampling_pool_ && settings_.neon.sampling_conn) {
    add(*sampling_pool_, *settings_.neon.sampling_conn);
  }
  return own;
}

void Scheduler::RunSamplers(Connection& conn) {
  if (!sampling_pool_) {
    RunSamplersOn(conn);
    return;
  }
  const auto now = SteadyClock::now();
  const bool due = (parts_.sampling && settings_.sampling.enabled &&
                    (now >= next_activity_ || now >= next_statements_)) ||
                   (parts_.db_stats && now >= next_db_stats_);
  // While it backs off after a failed connect, no network at all. NextConnectAllowed returns
  // its own "now" when not backing off, so it must be read before the clock it is compared to.
  const auto allowed = sampling_pool_->NextConnectAllowed();
  if (!due || allowed > SteadyClock::now()) return;
  auto lease = sampling_pool_->Acquire(now + settings_.database.connect_timeout);
  lifecycle_.Beat();
  if (!lease.ok()) {
    if (!sampling_pool_failing_) {
      LogWarn("cannot connect to neon.sampling_url; sampling paused until it works",
              {{"kind", std::string(ErrorKindName(lease.error->kind))},
               {"error", lease.error->message}});
    }
    sampling_pool_failing_ = true;
    ForgetDatabaseSeries();
    if (parts_.leader) parts_.leader->OnDatabaseLost("cannot connect to neon.sampling_url");
    return;
  }
  if (sampling_pool_failing_) LogInfo("connected to neon.sampling_url; sampling resumed", {});
  sampling_pool_failing_ = false;
  RunSamplersOn(lease.value->conn());
  sampling_pool_->Release(std::move(*lease.value));
}

void Scheduler::ForgetDatabaseSeries() {
  if (parts_.db_stats) parts_.db_stats->Forget();
  if (parts_.sampling) parts_.sampling->metrics().ClearCurrent();
  next_db_stats_ = {};  // collect again as soon as this sidecar may
}

void Scheduler::RunSamplersOn(Connection& conn) {
  const auto now = SteadyClock::now();
  if (parts_.leader &&
      !parts_.leader->MayCollect(conn, now, now + settings_.sampling.statement_timeout)) {
    ForgetDatabaseSeries();  // a follower exports no database-wide series
    return;
  }
  // `run` gets the sampler's span (inert without a tracer) and returns whether it worked.
  auto traced = [&](const char* name, const char* component, auto&& run) {
    ScopedSpan span;
    if (parts_.tracer) {
      span = parts_.tracer->StartSpan(name, SpanKind::kInternal);
      conn.SetStatementComment("/*traceparent='" + span.Traceparent() + "'*/");
    }
    bool ok = false;
    // A collector that throws leaves the session in an unknown state: drop it, go on.
    if (!Guarded(component, [&] { ok = run(span); })) conn.MarkBroken();
    conn.SetStatementComment("");
    if (ok) {
      span.SetOk();
    } else {
      span.SetError("collector_error", std::string(name) + " failed");
    }
  };
  if (parts_.sampling && settings_.sampling.enabled) {
    if (now >= next_activity_ && !conn.broken()) {
      next_activity_ = now + settings_.sampling.activity_interval;
      const auto sampled_at = std::chrono::system_clock::now();
      traced("pgvigil.sample.activity", "activity", [&](const ScopedSpan& span) {
        auto res = parts_.sampling->RunActivity(
            conn, SteadyClock::now() + settings_.sampling.statement_timeout, sampled_at);
        // Spans are a report: a failure there must not cost the session.
        Guarded("activity", [&] { TraceLongRunning(span, sampled_at); });
        return !res.error.has_value();
      });
    }
    if (now >= next_statements_ && !conn.broken()) {
      next_statements_ = now + settings_.sampling.statements_interval;
      traced("pgvigil.sample.statements", "statements", [&](const ScopedSpan&) {
        auto res = parts_.sampling->RunStatements(
            conn, SteadyClock::now() + settings_.sampling.statement_timeout,
            std::chrono::system_clock::now());
        return !res.error.has_value();
      });
    }
  }
  if (parts_.db_stats && now >= next_db_stats_ && !conn.broken()) {
    next_db_stats_ = now + settings_.stats.interval;
    traced("pgvigil.collect.db_stats", "db_stats", [&](const ScopedSpan&) {
      auto status =
          parts_.db_stats->RunAll(conn, SteadyClock::now() + settings_.sampling.statement_timeout);
      if (status.connection_lost) conn.MarkBroken();
      return status.failed == 0;
    });
  }
  lifecycle_.Beat();
}

// Each long-running query seen in this activity sample becomes an INTERNAL child of the
// sampler's span, from its query_start to the moment it was seen: an observation of somebody
// else's query, not a call pgvigil made (a CLIENT span would draw calls that never happened in
// service graphs, and db.* attributes would make backends count it as one). When the query's
// text carries a sqlcommenter traceparent, the span links to that trace.
void Scheduler::TraceLongRunning(const ScopedSpan& sampler,
                                 std::chrono::system_clock::time_point sampled_at) {
  if (!parts_.tracer || !sampler.active()) return;
  for (const auto& sample : parts_.sampling->activity().recent()) {
    if (sample.sampled_at != sampled_at) break;  // newest first: older runs follow
    const double seconds = sample.query_seconds.value_or(sample.duration_seconds);
    const auto start = sampled_at - std::chrono::duration_cast<SpanTime::duration>(
                                        std::chrono::duration<double>(seconds));
    auto span = parts_.tracer->StartSpan("pgvigil.long_running_query", SpanKind::kInternal,
                                         &sampler, start);
    span.SetAttribute("pgvigil.observed", true)
        .SetAttribute("pgvigil.backend.pid", static_cast<std::int64_t>(sample.pid))
        .SetAttribute("pgvigil.backend.state", sample.state)
        .SetAttribute("pgvigil.backend.database", sample.datname)
        .SetAttribute("pgvigil.backend.user", sample.usename)
        .SetAttribute("pgvigil.backend.application_name", sample.application_name)
        .SetAttribute("pgvigil.query.fingerprint", sample.text.fingerprint);
    if (!sample.wait_event_type.empty()) {
      span.SetAttribute("pgvigil.backend.wait_event",
                        sample.wait_event_type + ":" + sample.wait_event);
    }
    // Only obfuscated text goes into spans, whatever /queries shows.
    if (settings_.sampling.query_text == QueryTextMode::kObfuscated) {
      span.SetAttribute("pgvigil.query.text", sample.text.text);
    }
    if (sample.traceparent) {
      span.AddLink(SpanLink{sample.traceparent->trace_id,
                            sample.traceparent->parent_id,
                            sample.traceparent->flags,
                            true,
                            {}});
    }
    span.End(sampled_at);
  }
}

void Scheduler::Publish() {
  auto s = std::make_shared<Snapshot>();
  s->state = health_.state();
  s->reason = health_.reason();
  if (auto last = health_.last()) {
    s->any_probe_finished = true;
    s->last_probe_at = last->at;
    if (last->ok) s->last_latency_seconds = std::chrono::duration<double>(last->latency).count();
    if (last->error) {
      s->error_kind = std::string(ErrorKindName(last->error->kind));
      if (auto hint = last->error->Hint(); !hint.empty()) s->hint = hint;
    }
  }
  s->last_success_at = health_.last_success();
  s->consecutive_failures = health_.consecutive_failures();
  s->pool = pool_.Stats();
  s->target = settings_.database.conn.Redacted();
  s->sequence = ++sequence_;
  if (parts_.sampling) s->sampling_json = parts_.sampling->StatusJson();
  s->tracing_json =
      parts_.exporter ? parts_.exporter->StatusJson() : OtlpExporter::DisabledStatusJson();
  if (parts_.neon) s->neon_json = parts_.neon->StatusJson();
  if (parts_.db_stats) {
    s->db_stats_json = parts_.db_stats->StatusJson().dump(-1, ' ', false,
                                                          nlohmann::json::error_handler_t::replace);
  }
  if (parts_.leader) {
    s->stats_leader_json =
        parts_.leader->StatusJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  s->internal_errors_json = InternalErrorsJson();
  metrics_.UpdatePool(s->pool);
  if (sampling_pool_) metrics_.UpdateSamplingPool(sampling_pool_->Stats());
  snapshots_.Publish(std::move(s));
}

}  // namespace pgvigil
