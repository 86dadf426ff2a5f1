#pragma once
// NeonWatch: the Neon side of the scheduler. Composes the suspend policy, the control-plane API
// client and its pacer, the foreign-activity tracker and the Neon metrics, and returns policy
// Decisions for the scheduler to act on (stop probing, close the pool, probe now, idle/waking).
// Everything runs on the scheduler thread except StatusJson, which copies under a mutex.
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "neon/activity_probe.hpp"
#include "neon/neon_api.hpp"
#include "neon/neon_metrics.hpp"
#include "neon/neon_target.hpp"
#include "neon/suspend_policy.hpp"

namespace pgvigil {

class NeonWatch {
 public:
  NeonWatch(const Settings& settings, NeonTarget target, prometheus::Registry& registry,
            std::optional<std::string> api_key);

  bool allow_suspend() const;
  // Timers, and an API poll when one is due (a bounded HTTP call on this thread).
  Decision Tick(PolicyTime now);
  Decision OnWakeRequest(PolicyTime now) { return Note(policy_.OnWakeRequest(now)); }
  // After a probe: measures foreign activity on `conn` (allow_suspend only) and tells the policy.
  // `own`: pgvigil's own connects and statement time on the databases Neon counts.
  Decision AfterProbe(PolicyTime now, bool ok, Connection* conn, const OwnUsage& own,
                      SteadyTime deadline);
  Decision OnConnect(PolicyTime now, bool ok, std::chrono::nanoseconds duration);
  // An established session ended by the server with 57P01/57P02: counted, logged, and the
  // policy told (SuspendPolicy::OnSessionTerminated).
  Decision OnSessionTerminated(PolicyTime now, const DbError& error);
  void OnPoolClosed() { tracker_.Reset(); }
  Decision Current() const { return policy_.Current(); }
  std::string StatusJson() const;
  nlohmann::json Status() const;  // the "neon" section of /health

 private:
  Decision Note(Decision d);
  const Settings& settings_;
  NeonTarget target_;
  NeonMetrics metrics_;
  SuspendPolicy policy_;
  std::unique_ptr<NeonApi> api_;  // null without key/project/endpoint
  PollPacer pacer_;
  ActivityTracker tracker_;
  std::chrono::steady_clock::time_point next_poll_{};
  mutable std::mutex mu_;
  NeonStatus status_;  // guarded by mu_
};

}  // namespace pgvigil
