#pragma once
// ConnectionSource: the pools of the scheduler and which one a job gets. The probe always uses
// the main pool (database.url, possibly Neon's pooler); the other jobs use the sampling pool
// (neon.sampling_url, the direct host) when one is configured, else the main pool. The sampling
// pool's connects honour its backoff (no network while it backs off) and its failures are logged
// on transitions only (failing / working again), not on every attempt.
// Not thread-safe: owned and used by the scheduler thread; leases must not outlive it.
#include <functional>
#include <optional>

#include "config/settings.hpp"
#include "db/pool.hpp"
#include "neon/activity_probe.hpp"

namespace pgvigil {

class ConnectionSource {
 public:
  // `abort` (must outlive this) cuts connects and queries short at shutdown.
  ConnectionSource(const Settings& settings, const AbortSignal* abort);

  Pool& main() { return pool_; }
  const Pool& main() const { return pool_; }
  Pool* sampling() { return sampling_pool_ ? &*sampling_pool_ : nullptr; }

  // Runs `fn` on a connection for a job: the sampling pool's when configured; else `held` (a
  // main-pool connection the caller already has checked out) or a lease of the main pool.
  // Returns false, without calling `fn`, when no connection can be had now. A connection on
  // which `fn` throws is discarded (marked broken) and the exception goes on.
  bool WithJobConnection(std::chrono::steady_clock::time_point deadline, Connection* held,
                         const std::function<void(Connection&)>& fn);
  // While set (jobs that run before a due probe, whose success may stand for it), a job on the
  // main pool only gets a session the pool already has open: it never connects, so connects,
  // cold starts and their backoff stay the probe's (a suspended Neon compute is never woken).
  void SetIdleSessionsOnly(bool on) { idle_sessions_only_ = on; }

  // pgvigil's own connects and statement time on the databases Neon counts (both pools), so the
  // Neon activity check does not take pgvigil's work for an application's.
  OwnUsage OwnUsageNow() const;
  // Called when the sampling pool cannot connect (the jobs' database is out of reach).
  void SetOnSamplingPoolLost(std::function<void(std::string_view why)> fn) {
    on_sampling_lost_ = std::move(fn);
  }
  void Maintain();
  void CloseAll(const std::string& reason);

 private:
  std::optional<Pool::Lease> SamplingLease(std::chrono::steady_clock::time_point deadline);
  const Settings& settings_;
  Pool pool_;
  std::optional<Pool> sampling_pool_;
  bool sampling_pool_failing_ = false;
  bool idle_sessions_only_ = false;
  std::function<void(std::string_view)> on_sampling_lost_;
};

}  // namespace pgvigil
