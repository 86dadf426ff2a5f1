#pragma once
// SuspendPolicy: decides, for a Neon compute, when pgvigil probes and when it stays away so the
// compute can scale to zero. A pure state machine: no I/O, times are injected; the scheduler
// feeds it events and acts on the Decision it returns. Not thread-safe (owned by the scheduler).
//
// States:
//   active     probing at the normal interval; counts time since the last foreign activity.
//   going_idle probing stopped and pool closed after suspend_after without foreign activity;
//              Neon's own suspend timer is counting down. pgvigil must NOT reconnect now (that
//              would reset the timer), even though the API still says "active".
//   idle       the compute is asleep (API says idle, or assumed when there is no usable API).
//              Health: idle (healthy).
//   waking     probing resumed after idle; the first connect is a cold start. Failures within
//              wake_timeout are not failures (count_failures = false).
// Transitions:
//   active --(suspend_after without foreign activity, successful probe)--> going_idle | idle
//   going_idle --(API idle)--> idle;  --(API last_active newer than our last query, or never-
//              suspending endpoint, or POST /wake)--> active (probe at once)
//   idle --(API init/active, POST /wake, wake_check_interval due)--> waking
//   waking --(connect ok)--> active (records the cold start); --(wake_timeout passed)--> active
//              with failures counted.
//   active --(session ended with 57P01/57P02)--> going_idle | idle (allow_suspend) or
//              waking (keep_awake); not a failure either way.
// keep_awake: always active. The Neon API is polled (when configured) in every state, for
// /health and metrics; API calls never wake a compute.
// API trouble while not probing (going_idle, idle): the compute's state is unknown; the Decision
// says so (compute_unknown, with a reason and a hint) until the API answers again. pgvigil never
// connects to find out.
// Wakes: every wake the API shows (idle -> init/active) is reported once in Decision::wake:
// by "pgvigil" when pgvigil's own connect found the compute asleep (cold start measured on that
// connect), by "other" otherwise, with the cold start bounded by the API polls around it.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "neon/neon_api.hpp"

namespace pgvigil {

enum class PolicyState { kActive, kGoingIdle, kIdle, kWaking };
std::string_view PolicyStateName(PolicyState s);  // "active", "going_idle", "idle", "waking"
inline constexpr PolicyState kAllPolicyStates[] = {PolicyState::kActive, PolicyState::kGoingIdle,
                                                   PolicyState::kIdle, PolicyState::kWaking};

// The current time in both clocks: steady for timers, wall for comparing with the API's
// last_active.
struct PolicyTime {
  std::chrono::steady_clock::time_point steady;
  SystemTime wall;
  static PolicyTime Now() {
    return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()};
  }
};

struct SuspendPolicyOptions {
  IdlePolicy idle_policy = IdlePolicy::kAllowSuspend;
  Millis suspend_after{60'000};
  Millis api_poll_interval{30'000};
  Millis wake_timeout{15'000};
  std::optional<Millis> wake_check_interval;
  bool api_available = false;  // key, project and endpoint id known
  // Clock skew/rounding allowance when comparing the API's last_active with our last query.
  Millis last_active_slack{5000};

  static SuspendPolicyOptions From(const NeonSettings& s, bool api_available);
};

// A wake of the compute seen by pgvigil.
struct WakeObservation {
  std::string by;  // "pgvigil" | "other"
  // For "other": bounds of the cold start from API polls. lower = how long `init` was seen
  // (0 when never), upper = first poll seeing it awake minus the last poll seeing it idle.
  std::chrono::nanoseconds cold_start_lower{0};
  std::chrono::nanoseconds cold_start_upper{0};
};

struct Decision {
  PolicyState state = PolicyState::kActive;
  bool probing = true;         // run SQL probes (and sampling) at the normal interval
  bool probe_now = false;      // run one at once, without waiting for the interval (one-shot)
  bool close_pool = false;     // close the pool now (one-shot)
  bool count_failures = true;  // false while a cold start is within wake_timeout
  // When the policy wants the next API poll (the scheduler also respects its PollPacer);
  // nullopt = no API.
  std::optional<std::chrono::steady_clock::time_point> next_api_poll;
  std::optional<std::chrono::nanoseconds> cold_start;  // one-shot: a measured cold start
  std::optional<WakeObservation> wake;                 // one-shot: a wake, counted once
  bool compute_unknown = false;  // not probing and the API fails: nobody knows the state
  std::string reason;            // why we are in this state, for /health and logs
  std::string hint;              // what to do about it ("" when nothing)
};

class SuspendPolicy {
 public:
  using Steady = std::chrono::steady_clock::time_point;
  SuspendPolicy(SuspendPolicyOptions options, PolicyTime start);

  // After each SQL probe (and activity query) finished. `ok` = the probe succeeded;
  // `foreign_activity` = the ActivityTracker's verdict (ignored when !ok).
  Decision OnProbe(PolicyTime now, bool ok, bool foreign_activity,
                   std::string_view activity_reason = {});
  // A successful Neon API answer.
  Decision OnApiState(PolicyTime now, const ComputeState& state);
  // A failed Neon API call. 401/403/404/config make the API unusable until the next success.
  Decision OnApiError(PolicyTime now, const ApiError& error);
  // POST /wake on the admin listener: look now.
  Decision OnWakeRequest(PolicyTime now);
  // The result of a connect made while waking (or any new connection): ok and its duration.
  Decision OnConnectResult(PolicyTime now, bool ok, std::chrono::nanoseconds duration);
  // The server ended an established session of pgvigil's with 57P01/57P02 (Neon suspends or
  // restarts a compute that way): expected, never counted as a failure; the pool is closed.
  // allow_suspend: probing stops as after suspend_after (going_idle with a usable API, else
  // idle), so pgvigil does not wake a compute that just went to sleep. keep_awake: waking,
  // reconnect at once (the reconnect is measured as a cold start).
  Decision OnSessionTerminated(PolicyTime now, std::string_view detail);
  // Timers (wake_check_interval, wake_timeout); call on every scheduler turn.
  Decision Tick(PolicyTime now);

  // The current decision without one-shot effects.
  Decision Current() const;
  PolicyState state() const { return state_; }
  ComputeStateKind last_compute_state() const { return compute_state_; }
  bool api_usable() const { return options_.api_available && !api_broken_; }

 private:
  Decision Make(bool probe_now = false, bool close_pool = false,
                std::optional<std::chrono::nanoseconds> cold_start = std::nullopt) const;
  Decision Enter(PolicyState next, std::string reason, PolicyTime now, bool probe_now = false,
                 bool close_pool = false);
  Decision StopProbing(PolicyTime now, std::string quiet);
  Decision OnApiStateInner(PolicyTime now, const ComputeState& state);

  SuspendPolicyOptions options_;
  PolicyState state_ = PolicyState::kActive;
  std::string reason_;
  Steady state_since_;
  Steady last_foreign_;  // last time somebody else used the database (or we resumed)
  std::optional<SystemTime> last_own_query_;
  ComputeStateKind compute_state_ = ComputeStateKind::kUnknown;
  ComputeStateKind compute_state_at_wake_ = ComputeStateKind::kUnknown;
  bool api_broken_ = false;
  bool never_suspends_ = false;  // API: suspend_timeout_seconds = -1
  std::optional<Steady> last_api_poll_;
  std::optional<Steady> last_wake_check_;
  std::optional<std::string> api_trouble_;  // the failing API's error while not probing
  // Wake bookkeeping from successive API answers.
  ComputeStateKind last_api_state_ = ComputeStateKind::kUnknown;
  std::optional<Steady> last_idle_seen_;
  std::optional<Steady> first_init_seen_;
  std::optional<Steady> last_init_seen_;
  bool own_wake_unconfirmed_ = false;  // pgvigil woke it; the API has not shown it awake yet
};

}  // namespace pgvigil
