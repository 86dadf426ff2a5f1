#include "neon/neon_metrics.hpp"

#include <nlohmann/json.hpp>

namespace pgvigil {

NeonMetrics::NeonMetrics(prometheus::Registry& registry) {
  auto& compute = prometheus::BuildGauge()
                      .Name("pgvigil_neon_compute_state")
                      .Help("Neon compute state reported by the Neon API (one-hot)")
                      .Register(registry);
  for (auto k : {ComputeStateKind::kInit, ComputeStateKind::kActive, ComputeStateKind::kIdle,
                 ComputeStateKind::kUnknown}) {
    compute_state_[k] = &compute.Add({{"state", std::string(ComputeStateName(k))}});
  }
  SetComputeState(ComputeStateKind::kUnknown);

  auto& policy = prometheus::BuildGauge()
                     .Name("pgvigil_suspend_policy_state")
                     .Help("pgvigil's Neon suspend policy state (one-hot)")
                     .Register(registry);
  for (auto s : kAllPolicyStates) {
    policy_state_[s] = &policy.Add({{"state", std::string(PolicyStateName(s))}});
  }
  SetPolicyState(PolicyState::kActive);

  cold_starts_ = &prometheus::BuildCounter()
                      .Name("pgvigil_cold_starts_total")
                      .Help("Connects that woke a suspended Neon compute")
                      .Register(registry)
                      .Add({});
  cold_start_duration_ =
      &prometheus::BuildHistogram()
           .Name("pgvigil_cold_start_duration_seconds")
           .Help("Duration of connects that woke a suspended Neon compute")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30});
  api_requests_ = &prometheus::BuildCounter()
                       .Name("pgvigil_neon_api_requests_total")
                       .Help("Neon API requests by outcome")
                       .Register(registry);
  sessions_terminated_ =
      &prometheus::BuildCounter()
           .Name("pgvigil_neon_sessions_terminated_total")
           .Help(
               "pgvigil sessions the server ended with 57P01/57P02 (a Neon compute suspending "
               "or restarting); expected, not counted as probe failures")
           .Register(registry)
           .Add({});
  auto& wakes = prometheus::BuildCounter()
                    .Name("pgvigil_neon_wakes_total")
                    .Help(
                        "Wakes of the Neon compute pgvigil saw: by=\"pgvigil\" when its own "
                        "connect woke it, by=\"other\" when the API showed a wake it did not cause")
                    .Register(registry);
  wakes_by_pgvigil_ = &wakes.Add({{"by", "pgvigil"}});
  wakes_by_other_ = &wakes.Add({{"by", "other"}});
  observed_cold_start_ =
      &prometheus::BuildHistogram()
           .Name("pgvigil_neon_observed_cold_start_seconds")
           .Help(
               "Cold starts of wakes by others, upper bound from the Neon API polls around the "
               "wake (last poll seeing idle to first seeing active; precision one poll interval)")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.5, 1, 2, 5, 10, 20, 30, 60, 120});
}

void NeonMetrics::RecordWake(const WakeObservation& wake) {
  if (wake.by == "pgvigil") {
    wakes_by_pgvigil_->Increment();
  } else {
    wakes_by_other_->Increment();
    observed_cold_start_->Observe(std::chrono::duration<double>(wake.cold_start_upper).count());
  }
}

void NeonMetrics::SetComputeState(ComputeStateKind state) {
  for (auto& [k, g] : compute_state_) g->Set(k == state ? 1 : 0);
}

void NeonMetrics::SetPolicyState(PolicyState state) {
  for (auto& [s, g] : policy_state_) g->Set(s == state ? 1 : 0);
}

void NeonMetrics::RecordColdStart(std::chrono::nanoseconds duration) {
  cold_starts_->Increment();
  cold_start_duration_->Observe(std::chrono::duration<double>(duration).count());
}

void NeonMetrics::RecordApiRequest(const ApiResult& result) {
  api_requests_->Add({{"outcome", ApiOutcome(result)}}).Increment();
}

nlohmann::json NeonStatusSection(const NeonStatus& s) {
  using nlohmann::json;
  auto opt_time = [](const std::optional<SystemTime>& t) -> json {
    return t ? json(FormatRfc3339Utc(*t)) : json(nullptr);
  };
  json j;
  j["mode"] = s.enabled ? "on" : "off";
  j["endpoint_id"] = s.endpoint_id.empty() ? json(nullptr) : json(s.endpoint_id);
  j["project_id"] = s.project_id.empty() ? json(nullptr) : json(s.project_id);
  j["pooler"] = s.pooler;
  j["idle_policy"] = s.idle_policy == IdlePolicy::kKeepAwake ? "keep_awake" : "allow_suspend";
  j["policy"] = {{"state", s.policy_state ? json(std::string(PolicyStateName(*s.policy_state)))
                                          : json(nullptr)},
                 {"reason", s.policy_reason}};
  j["compute"] = {{"state", std::string(ComputeStateName(s.compute_state))},
                  {"suspend_timeout_seconds",
                   s.suspend_timeout_seconds ? json(*s.suspend_timeout_seconds) : json(nullptr)},
                  {"last_active", opt_time(s.last_active)},
                  {"reason", s.compute_reason.empty() ? json(nullptr) : json(s.compute_reason)},
                  {"hint", s.compute_hint.empty() ? json(nullptr) : json(s.compute_hint)}};
  json last_wake = nullptr;
  if (s.last_wake) {
    auto secs = [](std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); };
    last_wake = {
        {"by", s.last_wake->by},
        {"at", opt_time(s.last_wake_at)},
        {"cold_start_seconds_min", secs(s.last_wake->cold_start_lower)},
        {"cold_start_seconds_max", secs(s.last_wake->cold_start_upper)},
        {"resolution_seconds", s.last_wake->by == "pgvigil" ? 0.0 : s.api_poll_interval_seconds}};
  }
  j["wakes"] = {
      {"by_pgvigil", s.wakes_by_pgvigil}, {"by_other", s.wakes_by_other}, {"last", last_wake}};
  j["api"] = {
      {"configured", s.api_configured},
      {"last_outcome", s.last_api_outcome.empty() ? json(nullptr) : json(s.last_api_outcome)},
      {"last_error", s.last_api_error.empty() ? json(nullptr) : json(s.last_api_error)},
      {"last_at", opt_time(s.last_api_at)}};
  j["cold_starts"] = {{"total", s.cold_starts},
                      {"last_seconds", s.last_cold_start_seconds ? json(*s.last_cold_start_seconds)
                                                                 : json(nullptr)}};
  j["hints"] = s.hints;
  return j;
}

std::string NeonStatusJson(const NeonStatus& s) {
  return NeonStatusSection(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pgvigil
