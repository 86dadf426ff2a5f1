#include "runtime/runtime.hpp"

#include <algorithm>

#include "fleet/stats_leader.hpp"
#include "neon/neon_watch.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "runtime/db_stats_job.hpp"
#include "runtime/sampler_jobs.hpp"
#include "sampling/query_sampling.hpp"
#include "tracing/otlp_exporter.hpp"

namespace pgvigil {

Runtime::Runtime(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
                 AgentMetrics& metrics, RuntimeParts parts)
    : settings_(settings),
      snapshots_(snapshots),
      metrics_(metrics),
      parts_(parts),
      connections_(settings, &abort_),
      probe_source_(settings, connections_, parts.tracer),
      probe_(settings, probe_source_, metrics, parts.neon, parts.tracer) {
  // The jobs of the windows between probes, in this order when equally due. A new periodic
  // database task is one Job (or one collector of the statistics job) and one line here.
  StatementsJob* statements = nullptr;
  if (parts_.sampling && settings.sampling.enabled) {
    jobs_.push_back(
        std::make_unique<ActivityJob>(settings, *parts_.sampling, connections_, parts_.tracer));
    auto s =
        std::make_unique<StatementsJob>(settings, *parts_.sampling, connections_, parts_.tracer);
    statements = s.get();
    jobs_.push_back(std::move(s));
  }
  if (parts_.db_stats) {
    jobs_.push_back(
        std::make_unique<DbStatsJob>(settings, *parts_.db_stats, connections_, parts_.tracer));
  }
  if (statements) {
    probe_.SetLastWindow([statements](Connection* held) { statements->RunLastWindow(held); });
  }
  std::vector<Job*> list;
  for (auto& j : jobs_) list.push_back(j.get());
  SchedulerHooks hooks;
  hooks.publish = [this] { Publish(); };
  hooks.maintain = [this] { connections_.Maintain(); };
  hooks.shutdown = [this] { connections_.CloseAll("shutdown"); };
  hooks.may_run_jobs = [this](const JobContext& ctx) { return MayRunJobs(ctx); };
  // Without neon.sampling_url every job uses the probe's pool: its success may stand for a probe.
  hooks.on_probe_target = [this](const Job&) { return connections_.sampling() == nullptr; };
  hooks.before_probe = [this](bool on) {
    connections_.SetIdleSessionsOnly(on);
    ahead_of_probe_ = on;
  };
  probe_.SetOnDatabaseLost([this](std::string_view why) {
    ForgetDatabaseSeries();
    if (parts_.leader) parts_.leader->OnDatabaseLost(why);
  });
  connections_.SetOnSamplingPoolLost([this](std::string_view why) {
    ForgetDatabaseSeries();
    if (parts_.leader) parts_.leader->OnDatabaseLost(why);
  });
  scheduler_ = std::make_unique<Scheduler>(SystemClock::Instance(), lifecycle, metrics, probe_,
                                           std::move(list), std::move(hooks));
  // One turn may legitimately sit in a connect, the probe, an API call and a window of jobs;
  // /livez must not call that dead.
  lifecycle.heartbeat_stale_after = std::max<std::chrono::nanoseconds>(
      std::chrono::seconds(30),
      3 * (settings.database.connect_timeout + settings.probe.timeout +
           2 * settings.sampling.statement_timeout + settings.neon.wake_timeout));
}

Runtime::~Runtime() { Stop(); }

void Runtime::Start() { scheduler_->Start(); }

void Runtime::Stop() {
  // Ends a connect or query in flight at once (a frozen server would hold it to its deadline),
  // so shutdown stays within http.shutdown_timeout.
  abort_.Trigger();
  scheduler_->Stop();
}

void Runtime::ForgetDatabaseSeries() {
  if (parts_.db_stats) parts_.db_stats->Forget();
  if (parts_.sampling) parts_.sampling->metrics().ClearCurrent();
  if (scheduler_) scheduler_->MakeAllDue();
}

bool Runtime::MayRunJobs(const JobContext& ctx) {
  if (!parts_.leader) return true;
  bool may = false;
  const auto now = std::chrono::steady_clock::now();
  // Ahead of a due probe (on its pool, bounded by probe.timeout) a follower's retry stands for
  // the probe statement: it may run at the probe tick nearest its due time.
  const auto early = ahead_of_probe_ ? settings_.probe.interval / 2 : Millis(0);
  connections_.WithJobConnection(
      ctx.Bound(now + settings_.database.connect_timeout), nullptr, [&](Connection& conn) {
        const auto start = std::chrono::steady_clock::now();
        may = parts_.leader->MayCollect(
            conn, start, ctx.Bound(start + settings_.sampling.statement_timeout), early);
      });
  if (!may) ForgetDatabaseSeries();  // a follower exports no database-wide series
  return may;
}

void Runtime::Publish() {
  auto s = std::make_shared<Snapshot>();
  const HealthModel& health = probe_.health();
  s->state = health.state();
  s->reason = health.reason();
  if (auto last = health.last()) {
    s->any_probe_finished = true;
    s->last_probe_at = last->at;
    if (last->ok) s->last_latency_seconds = std::chrono::duration<double>(last->latency).count();
    if (last->error) {
      s->error_kind = std::string(ErrorKindName(last->error->kind));
      if (auto hint = last->error->Hint(); !hint.empty()) s->hint = hint;
    }
  }
  s->last_success_at = health.last_success();
  s->consecutive_failures = health.consecutive_failures();
  s->pool = connections_.main().Stats();
  if (Pool* sp = connections_.sampling()) s->sampling_pool = sp->Stats();
  s->target = settings_.database.conn.Redacted();
  s->sequence = ++sequence_;
  if (parts_.sampling) s->sampling = parts_.sampling->Status();
  s->tracing =
      parts_.exporter ? parts_.exporter->StatusSection() : OtlpExporter::DisabledStatusSection();
  if (parts_.neon) s->neon = parts_.neon->Status();
  if (parts_.db_stats) s->db_stats = parts_.db_stats->StatusJson();
  if (parts_.leader) s->stats_leader = parts_.leader->StatusJson();
  s->jobs = scheduler_->JobsStatus();
  s->internal_errors = scheduler_->internal_errors();
  metrics_.UpdatePool(s->pool);
  if (s->sampling_pool) metrics_.UpdateSamplingPool(*s->sampling_pool);
  snapshots_.Publish(std::move(s));
}

}  // namespace pgvigil
