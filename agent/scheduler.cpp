#include "scheduler.hpp"

#include <algorithm>

#include "health/prober.hpp"
#include "util/log.hpp"

namespace pgvigil {

namespace {
using SteadyClock = std::chrono::steady_clock;
constexpr auto kHeartbeat = std::chrono::seconds(1);
}  // namespace

Scheduler::Scheduler(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
                     AgentMetrics& metrics)
    : settings_(settings),
      snapshots_(snapshots),
      lifecycle_(lifecycle),
      metrics_(metrics),
      pool_(settings.pool, settings.database.conn, settings.database.connect_timeout),
      health_(settings.probe) {
  // The loop may legitimately sit in one connect plus one query; /livez must not call that dead.
  lifecycle_.heartbeat_stale_after =
      std::max<std::chrono::nanoseconds>(std::chrono::seconds(30),
                                         3 * (settings.database.connect_timeout +
                                              settings.probe.timeout + settings.sampling.statement_timeout));
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  lifecycle_.Beat();
  Publish();
  thread_ = std::jthread([this](std::stop_token st) { Run(st); });
}

void Scheduler::Stop() {
  if (!thread_.joinable()) return;
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

void Scheduler::Run(std::stop_token stop) {
  auto next_probe = SteadyClock::now();
  while (!stop.stop_requested()) {
    lifecycle_.Beat();
    const auto now = SteadyClock::now();
    bool woken = false;
    {
      std::lock_guard lock(wake_mu_);
      woken = std::exchange(wake_requested_, false);
    }
    if (now >= next_probe || woken) {
      // While the pool backs off after a failed connect, probe when it allows the next attempt.
      if (woken || pool_.NextConnectAllowed() <= now) {
        Probe();
        next_probe = SteadyClock::now() + settings_.probe.interval;
      } else {
        next_probe = pool_.NextConnectAllowed();
      }
    }
    pool_.Maintain();
    Publish();
    WaitUntil(stop, next_probe);
  }
  pool_.CloseAll("shutdown");
  Publish();
}

void Scheduler::Probe() {
  const auto before = health_.state();
  ProbeResult r = RunProbe(pool_, settings_.probe);
  const bool changed = health_.Observe(r);
  metrics_.RecordProbe(r);
  metrics_.SetState(health_.state(), changed);
  if (changed) {
    const auto level = DbStateUsable(health_.state()) ? LogLevelValue::kInfo : LogLevelValue::kWarn;
    Log(level, "database state changed",
        {{"from", std::string(DbStateName(before))},
         {"to", std::string(DbStateName(health_.state()))},
         {"reason", health_.reason()},
         {"target", settings_.database.conn.Redacted()}});
  } else if (!r.ok) {
    LogDebug("probe failed", {{"state", std::string(DbStateName(health_.state()))},
                              {"reason", health_.reason()}});
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
  metrics_.UpdatePool(s->pool);
  snapshots_.Publish(std::move(s));
}

}  // namespace pgvigil
