#include "neon/neon_watch.hpp"

#include "util/log.hpp"

namespace pgvigil {

namespace {

bool ApiAvailable(const Settings& s, const NeonTarget& t, const std::optional<std::string>& key) {
  return key && !key->empty() && !s.neon.project_id.empty() && !t.endpoint_id.empty();
}

PollPacerOptions PacerOptions(const NeonSettings& s) {
  PollPacerOptions o;
  o.interval = s.api_poll_interval;
  return o;
}

}  // namespace

NeonWatch::NeonWatch(const Settings& settings, NeonTarget target, prometheus::Registry& registry,
                     std::optional<std::string> api_key)
    : settings_(settings),
      target_(std::move(target)),
      metrics_(registry),
      policy_(SuspendPolicyOptions::From(settings.neon, ApiAvailable(settings, target_, api_key)),
              PolicyTime::Now()),
      pacer_(PacerOptions(settings.neon)),
      tracker_(!target_.pooler) {
  if (ApiAvailable(settings, target_, api_key)) {
    NeonApiOptions o;
    o.api_url = settings.neon.api_url;
    o.api_key = *api_key;
    o.project_id = settings.neon.project_id;
    o.endpoint_id = target_.endpoint_id;
    api_ = std::make_unique<NeonApi>(std::move(o));
  }
  std::lock_guard lock(mu_);
  status_.enabled = true;
  status_.endpoint_id = target_.endpoint_id;
  status_.project_id = settings.neon.project_id;
  status_.pooler = target_.pooler;
  status_.idle_policy = settings.neon.idle_policy;
  status_.api_configured = api_ != nullptr;
  status_.api_poll_interval_seconds =
      std::chrono::duration<double>(settings.neon.api_poll_interval).count();
  status_.hints = target_.warnings;
  if (!api_ && settings.neon.idle_policy == IdlePolicy::kAllowSuspend) {
    status_.hints.push_back("no Neon API access (set " + settings.neon.api_key_env +
                            " and neon.project_id): while the compute sleeps pgvigil waits for " +
                            "POST /wake or neon.wake_check_interval");
  }
  metrics_.SetPolicyState(policy_.state());
}

bool NeonWatch::allow_suspend() const {
  return settings_.neon.idle_policy == IdlePolicy::kAllowSuspend;
}

Decision NeonWatch::Note(Decision d) {
  metrics_.SetPolicyState(d.state);
  if (d.cold_start) metrics_.RecordColdStart(*d.cold_start);
  if (d.wake) {
    metrics_.RecordWake(*d.wake);
    LogInfo("neon compute woke up",
            {{"by", d.wake->by},
             {"cold_start_seconds_max",
              std::to_string(std::chrono::duration<double>(d.wake->cold_start_upper).count())}});
  }
  if (d.compute_unknown) metrics_.SetComputeState(ComputeStateKind::kUnknown);
  std::lock_guard lock(mu_);
  if (d.wake) {
    ++(d.wake->by == "pgvigil" ? status_.wakes_by_pgvigil : status_.wakes_by_other);
    status_.last_wake = d.wake;
    status_.last_wake_at = std::chrono::system_clock::now();
  }
  if (d.compute_unknown) {
    status_.compute_state = ComputeStateKind::kUnknown;
    status_.compute_reason = d.reason;
    status_.compute_hint = d.hint;
  }
  if (status_.policy_state != d.state) {
    LogInfo("neon suspend policy",
            {{"state", std::string(PolicyStateName(d.state))}, {"reason", d.reason}});
  }
  status_.policy_state = d.state;
  status_.policy_reason = d.reason;
  if (d.cold_start) {
    status_.last_cold_start_seconds = std::chrono::duration<double>(*d.cold_start).count();
    ++status_.cold_starts;
  }
  return d;
}

Decision NeonWatch::Tick(PolicyTime now) {
  Decision d = Note(policy_.Tick(now));
  if (!api_) return d;
  auto due = std::max(next_poll_, pacer_.EarliestAllowed(now.steady));
  if (d.next_api_poll) due = std::max(due, *d.next_api_poll);
  if (now.steady < due) return d;
  ApiResult r = api_->GetEndpoint();
  metrics_.RecordApiRequest(r);
  next_poll_ = pacer_.OnResult(now.steady, r);
  {
    std::lock_guard lock(mu_);
    status_.last_api_at = now.wall;
    status_.last_api_outcome = ApiOutcome(r);
    status_.last_api_error = r ? "" : r.error().message;
    if (r) {
      status_.compute_reason.clear();
      status_.compute_hint.clear();
      status_.compute_state = r->state;
      status_.suspend_timeout_seconds = r->suspend_timeout_seconds;
      status_.last_active = r->last_active;
    }
  }
  if (r) {
    metrics_.SetComputeState(r->state);
    return Note(policy_.OnApiState(now, *r));
  }
  LogWarn("neon API request failed", {{"error", r.error().message}});
  return Note(policy_.OnApiError(now, r.error()));
}

Decision NeonWatch::AfterProbe(PolicyTime now, bool ok, Connection* conn, const OwnUsage& own,
                               SteadyTime deadline) {
  bool foreign = false;
  std::string reason;
  if (ok && conn && allow_suspend()) {
    auto v = ProbeActivity(*conn, settings_.database.application_name, tracker_, own, deadline);
    if (v) {
      foreign = v->foreign;
      reason = v->reason;
      if (v->keeps_awake) reason += "; probing steadily";
    } else {
      // Unknown activity: assume somebody is there rather than let a compute sleep wrongly.
      foreign = true;
      reason = "activity check failed";
    }
  }
  return Note(policy_.OnProbe(now, ok, foreign, reason));
}

Decision NeonWatch::OnConnect(PolicyTime now, bool ok, std::chrono::nanoseconds duration) {
  return Note(policy_.OnConnectResult(now, ok, duration));
}

Decision NeonWatch::OnSessionTerminated(PolicyTime now, const DbError& error) {
  metrics_.RecordSessionTerminated();
  const std::string detail =
      error.sqlstate.empty() ? "admin_shutdown" : "SQLSTATE " + error.sqlstate;
  LogInfo("neon compute ended pgvigil's session (expected on suspend or restart)",
          {{"detail", detail}, {"error", error.message}});
  return Note(policy_.OnSessionTerminated(now, detail));
}

std::string NeonWatch::StatusJson() const {
  std::lock_guard lock(mu_);
  return NeonStatusJson(status_);
}

nlohmann::json NeonWatch::Status() const {
  std::lock_guard lock(mu_);
  return NeonStatusSection(status_);
}

}  // namespace pgvigil
