#pragma once
// ProbeJob: the scheduler's priority job. Every probe.interval it connects if needed and runs the
// probe statement under probe.timeout (through a ProbeSource), feeds the HealthModel and the
// probe/state metrics, traces it, and follows the Neon suspend policy (NeonWatch): it stops
// probing while the compute may sleep, closes the pools, cold-starts with neon.wake_timeout and
// treats 57P01 on an established session as the compute's suspend, not a failure. While the pool
// backs off after a failed connect it looks again when the backoff allows, or at once on
// POST /wake.
// By traffic: when jobs on the probe's pool ran first in this tick (TickTraffic), their outcome
// may stand for the probe statement (ProbeSource); the health model, metrics, spans and the Neon
// policy then follow that result exactly as they follow a probe statement's.
// Not thread-safe: the scheduler thread only; its state is copied into snapshots there.
#include <functional>
#include <optional>

#include "config/settings.hpp"
#include "health/health_model.hpp"
#include "runtime/job.hpp"
#include "runtime/probe_source.hpp"
#include "telemetry/metrics.hpp"

namespace pgvigil {

class NeonWatch;
class Tracer;
struct Decision;

class ProbeJob final : public Job {
 public:
  // `neon` and `tracer` may be null (off). All must outlive the job.
  ProbeJob(const Settings& settings, ProbeSource& source, AgentMetrics& metrics, NeonWatch* neon,
           Tracer* tracer);

  std::string_view name() const override { return "probe"; }
  std::chrono::milliseconds interval() const override { return settings_.probe.interval; }
  bool NeedsDatabase() const override { return false; }
  // Every loop turn: Neon timers and API polls, and POST /wake. Returns true when the policy
  // wants a probe at once.
  bool OnTurn(const Clock& clock, bool woken);
  JobOutcome Run(JobContext& ctx) override { return Run(ctx, nullptr); }
  // `traffic`: null when no job ran before the probe in this tick.
  JobOutcome Run(JobContext& ctx, const TickTraffic* traffic);
  StatementTally Statements() const { return source_.Statements(); }
  bool reuse_traffic() const { return settings_.probe.reuse_traffic; }
  Millis timeout() const { return settings_.probe.timeout; }

  // Called with the probe's session just before the Neon policy closes the pools, so the
  // statements sampler takes its last window (pg_stat_statements empties on a restart).
  void SetLastWindow(std::function<void(Connection*)> fn) { last_window_ = std::move(fn); }
  // Called when the probe fails or the Neon policy stops probing: the database-wide series can
  // no longer be vouched for (fleet: the stats leader's session is gone or about to be).
  void SetOnDatabaseLost(std::function<void(std::string_view why)> fn) {
    on_database_lost_ = std::move(fn);
  }

  bool probing() const { return probing_; }
  // Probing and the last probe succeeded: the other jobs may use the database.
  bool database_ready() const { return probing_ && last_ok_; }
  const HealthModel& health() const { return health_; }

 private:
  void Apply(const Decision& d, const Clock& clock);
  void Observe(const ProbeResult& r, bool count_failure);
  void Cycle(const Clock& clock, const TickTraffic* traffic);

  const Settings& settings_;
  ProbeSource& source_;
  AgentMetrics& metrics_;
  NeonWatch* neon_;
  Tracer* tracer_;
  HealthModel health_;
  std::function<void(Connection*)> last_window_;
  std::function<void(std::string_view)> on_database_lost_;
  bool probing_ = true;  // false while the Neon policy keeps away from the compute
  bool last_ok_ = false;
  bool probe_now_ = false;  // a Neon decision asked for a probe at once
};

}  // namespace pgvigil
