#include "neon/suspend_policy.hpp"

namespace pgvigil {

std::string_view PolicyStateName(PolicyState s) {
  switch (s) {
    case PolicyState::kActive:
      return "active";
    case PolicyState::kGoingIdle:
      return "going_idle";
    case PolicyState::kIdle:
      return "idle";
    case PolicyState::kWaking:
      return "waking";
  }
  return "active";
}

SuspendPolicyOptions SuspendPolicyOptions::From(const NeonSettings& s, bool api_available) {
  SuspendPolicyOptions o;
  o.idle_policy = s.idle_policy;
  o.suspend_after = s.suspend_after;
  o.api_poll_interval = s.api_poll_interval;
  o.wake_timeout = s.wake_timeout;
  o.wake_check_interval = s.wake_check_interval;
  o.api_available = api_available;
  return o;
}

SuspendPolicy::SuspendPolicy(SuspendPolicyOptions options, PolicyTime start)
    : options_(options), state_since_(start.steady), last_foreign_(start.steady) {
  reason_ = options_.idle_policy == IdlePolicy::kKeepAwake
                ? "idle_policy keep_awake: probing continuously (the compute never suspends)"
                : "probing; nobody else has used the database yet";
}

Decision SuspendPolicy::Make(bool probe_now, bool close_pool,
                             std::optional<std::chrono::nanoseconds> cold_start) const {
  Decision d;
  d.state = state_;
  d.probing = state_ == PolicyState::kActive || state_ == PolicyState::kWaking;
  d.probe_now = probe_now;
  d.close_pool = close_pool;
  d.count_failures = state_ != PolicyState::kWaking;
  if (options_.api_available) {
    d.next_api_poll = last_api_poll_ ? *last_api_poll_ + options_.api_poll_interval : state_since_;
  }
  d.cold_start = cold_start;
  d.reason = reason_;
  if (api_trouble_ && !d.probing) {
    d.compute_unknown = true;
    d.reason = "compute state unknown: the Neon API failed (" + *api_trouble_ +
               "); pgvigil does not connect to find out and polls the API again every " +
               FormatDuration(options_.api_poll_interval);
    d.hint =
        "check neon.api_url and the network path to it (and status.neon.tech); POST /wake "
        "connects on purpose";
  }
  return d;
}

Decision SuspendPolicy::Current() const { return Make(); }

Decision SuspendPolicy::Enter(PolicyState next, std::string reason, PolicyTime now, bool probe_now,
                              bool close_pool) {
  if (next != state_) state_since_ = now.steady;
  state_ = next;
  reason_ = std::move(reason);
  return Make(probe_now, close_pool);
}

Decision SuspendPolicy::StopProbing(PolicyTime now, std::string quiet) {
  if (api_usable()) {
    return Enter(PolicyState::kGoingIdle,
                 quiet + "; probing paused so the compute can suspend (watching the Neon API)", now,
                 false, true);
  }
  last_wake_check_ = now.steady;
  std::string how = options_.wake_check_interval
                        ? "POST /wake or every " + FormatDuration(*options_.wake_check_interval)
                        : "POST /wake";
  return Enter(PolicyState::kIdle,
               quiet +
                   "; probing paused so the compute can suspend (no Neon API to watch it; "
                   "checks again on " +
                   how + ")",
               now, false, true);
}

Decision SuspendPolicy::OnProbe(PolicyTime now, bool ok, bool foreign_activity,
                                std::string_view activity_reason) {
  if (ok) last_own_query_ = now.wall;
  if (options_.idle_policy == IdlePolicy::kKeepAwake) return Make();
  switch (state_) {
    case PolicyState::kWaking:
      if (!ok) return Tick(now);
      last_foreign_ = now.steady;
      return Enter(PolicyState::kActive, "compute awake; probing", now);
    case PolicyState::kActive:
      if (!ok) return Make();
      if (foreign_activity) {
        last_foreign_ = now.steady;
        reason_ = activity_reason.empty() ? "probing; the database is in use"
                                          : "probing; " + std::string(activity_reason);
        return Make();
      }
      if (never_suspends_) return Make();
      if (now.steady - last_foreign_ >= options_.suspend_after) {
        return StopProbing(
            now, "no activity besides pgvigil for " + FormatDuration(options_.suspend_after));
      }
      return Make();
    case PolicyState::kGoingIdle:
    case PolicyState::kIdle:
      return Make();  // a probe that was already under way; nothing changes
  }
  return Make();
}

Decision SuspendPolicy::OnApiState(PolicyTime now, const ComputeState& cs) {
  last_api_poll_ = now.steady;
  api_broken_ = false;
  api_trouble_.reset();
  // Wakes, from what the API shows between polls.
  std::optional<WakeObservation> wake;
  if (cs.state == ComputeStateKind::kIdle) {
    last_idle_seen_ = now.steady;
    first_init_seen_.reset();
    last_init_seen_.reset();
    own_wake_unconfirmed_ = false;
  } else if (cs.state == ComputeStateKind::kInit) {
    if (!first_init_seen_) first_init_seen_ = now.steady;
    last_init_seen_ = now.steady;
  } else if (cs.state == ComputeStateKind::kActive && last_idle_seen_ &&
             (last_api_state_ == ComputeStateKind::kIdle ||
              last_api_state_ == ComputeStateKind::kInit)) {
    if (!own_wake_unconfirmed_) {
      WakeObservation w;
      w.by = "other";
      w.cold_start_upper = now.steady - *last_idle_seen_;
      if (first_init_seen_) w.cold_start_lower = *last_init_seen_ - *first_init_seen_;
      wake = w;
    }
    own_wake_unconfirmed_ = false;
    last_idle_seen_.reset();
    first_init_seen_.reset();
    last_init_seen_.reset();
  }
  last_api_state_ = cs.state;
  Decision d = OnApiStateInner(now, cs);
  d.wake = wake;
  return d;
}

Decision SuspendPolicy::OnApiStateInner(PolicyTime now, const ComputeState& cs) {
  compute_state_ = cs.state;
  never_suspends_ = cs.suspend_timeout_seconds && *cs.suspend_timeout_seconds < 0;
  if (options_.idle_policy == IdlePolicy::kKeepAwake) return Make();
  const bool awake = cs.state == ComputeStateKind::kActive || cs.state == ComputeStateKind::kInit;
  switch (state_) {
    case PolicyState::kGoingIdle:
      if (cs.state == ComputeStateKind::kIdle) {
        return Enter(PolicyState::kIdle, "compute suspended (Neon API: idle)", now);
      }
      if (awake && never_suspends_) {
        last_foreign_ = now.steady;
        return Enter(PolicyState::kActive,
                     "the endpoint never suspends (suspend_timeout_seconds = -1); probing", now,
                     true);
      }
      if (awake && cs.last_active && last_own_query_ &&
          *cs.last_active > *last_own_query_ + options_.last_active_slack) {
        last_foreign_ = now.steady;
        return Enter(PolicyState::kActive,
                     "the compute was used by another client (Neon last_active " +
                         FormatRfc3339Utc(*cs.last_active) + "); probing resumed",
                     now, true);
      }
      return Make();
    case PolicyState::kIdle:
      if (awake) {
        compute_state_at_wake_ = cs.state;
        return Enter(PolicyState::kWaking,
                     "compute woke up (Neon API: " + std::string(ComputeStateName(cs.state)) +
                         "); probing resumed",
                     now, true);
      }
      return Make();
    case PolicyState::kActive:
    case PolicyState::kWaking:
      return Make();
  }
  return Make();
}

Decision SuspendPolicy::OnApiError(PolicyTime now, const ApiError& error) {
  last_api_poll_ = now.steady;
  if (state_ == PolicyState::kGoingIdle || state_ == PolicyState::kIdle) {
    api_trouble_ = std::string(ApiErrorKindName(error.kind)) +
                   (error.http_status ? " " + std::to_string(error.http_status) : "");
    compute_state_ = ComputeStateKind::kUnknown;
  }
  if (error.Transient()) return Make();
  api_broken_ = true;
  if (options_.idle_policy == IdlePolicy::kAllowSuspend && state_ == PolicyState::kGoingIdle) {
    last_wake_check_ = now.steady;
    return Enter(PolicyState::kIdle,
                 "Neon API unusable (" + std::string(ApiErrorKindName(error.kind)) +
                     "); assuming the compute suspends; POST /wake to look",
                 now);
  }
  return Make();
}

Decision SuspendPolicy::OnWakeRequest(PolicyTime now) {
  if (options_.idle_policy == IdlePolicy::kKeepAwake) return Make(true);
  switch (state_) {
    case PolicyState::kActive:
    case PolicyState::kWaking:
      return Make(true);
    case PolicyState::kGoingIdle:
      last_foreign_ = now.steady;
      return Enter(PolicyState::kActive, "wake requested (POST /wake); probing", now, true);
    case PolicyState::kIdle:
      compute_state_at_wake_ = compute_state_;
      return Enter(PolicyState::kWaking, "wake requested (POST /wake); connecting", now, true);
  }
  return Make(true);
}

Decision SuspendPolicy::OnConnectResult(PolicyTime now, bool ok,
                                        std::chrono::nanoseconds duration) {
  if (state_ != PolicyState::kWaking) return Make();
  if (!ok) return Tick(now);
  last_foreign_ = now.steady;
  // A connect to a compute the API already reported active or starting (somebody else woke it)
  // is no cold start of ours: that wake is counted from the API's transitions.
  std::optional<std::chrono::nanoseconds> cold;
  if (compute_state_at_wake_ != ComputeStateKind::kActive &&
      compute_state_at_wake_ != ComputeStateKind::kInit) {
    cold = duration;
  }
  state_since_ = now.steady;
  state_ = PolicyState::kActive;
  reason_ = "compute awake; probing";
  Decision d = Make(false, false, cold);
  if (cold) {
    d.wake = WakeObservation{"pgvigil", *cold, *cold};
    own_wake_unconfirmed_ = true;  // the API will show this wake too: count it once
  }
  return d;
}

Decision SuspendPolicy::OnSessionTerminated(PolicyTime now, std::string_view detail) {
  std::string why = "the server ended pgvigil's session (" + std::string(detail) +
                    "): the compute suspended or restarted";
  if (options_.idle_policy == IdlePolicy::kAllowSuspend) {
    if (state_ != PolicyState::kActive && state_ != PolicyState::kWaking) return Make();
    Decision d = StopProbing(now, std::move(why));
    d.count_failures = false;
    return d;
  }
  compute_state_at_wake_ = ComputeStateKind::kUnknown;
  Decision d =
      Enter(PolicyState::kWaking, why + "; reconnecting (idle_policy keep_awake)", now, true, true);
  return d;
}

Decision SuspendPolicy::Tick(PolicyTime now) {
  if (state_ == PolicyState::kWaking && now.steady - state_since_ >= options_.wake_timeout) {
    last_foreign_ = now.steady;
    return Enter(PolicyState::kActive,
                 "the compute did not wake within " + FormatDuration(options_.wake_timeout) +
                     " (neon.wake_timeout); failures count again",
                 now);
  }
  if (options_.idle_policy == IdlePolicy::kKeepAwake) return Make();
  if (state_ == PolicyState::kIdle && !api_usable() && options_.wake_check_interval &&
      last_wake_check_ && now.steady - *last_wake_check_ >= *options_.wake_check_interval) {
    last_wake_check_ = now.steady;
    compute_state_at_wake_ = compute_state_;
    return Enter(PolicyState::kWaking, "periodic wake check (neon.wake_check_interval)", now, true);
  }
  return Make();
}

}  // namespace pgvigil
