#pragma once
// NeonMetrics: the Neon families, declared in one place and registered into the agent's
// registry. Thread-safe (prometheus-cpp metrics are atomic); updated by the scheduler.
//   pgvigil_neon_compute_state{state}        gauge one-hot: init|active|idle|unknown
//   pgvigil_cold_starts_total                counter
//   pgvigil_cold_start_duration_seconds      histogram .1 .25 .5 1 2 5 10 20 30
//   pgvigil_neon_api_requests_total{outcome} counter ok|unauthorized|not_found|rate_limited|...
//   pgvigil_suspend_policy_state{state}      gauge one-hot: active|going_idle|idle|waking
//   pgvigil_neon_sessions_terminated_total   counter sessions the server ended (57P01/57P02):
//                                            expected on suspend/restart, not probe failures
//   pgvigil_neon_wakes_total{by}             counter wakes the API showed: by="pgvigil" (our
//                                            own connect woke it) | "other" (an app did)
//   pgvigil_neon_observed_cold_start_seconds histogram, wakes by="other": upper bound from the
//                                            API polls around the wake (poll resolution)
// NeonStatus / NeonStatusSection: the "neon" section of /health (a JSON value for the snapshot).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "neon/neon_api.hpp"
#include "neon/suspend_policy.hpp"

namespace pgvigil {

class NeonMetrics {
 public:
  explicit NeonMetrics(prometheus::Registry& registry);

  void SetComputeState(ComputeStateKind state);
  void SetPolicyState(PolicyState state);
  void RecordColdStart(std::chrono::nanoseconds duration);
  void RecordApiRequest(const ApiResult& result);  // outcome label = ApiOutcome(result)
  void RecordSessionTerminated() { sessions_terminated_->Increment(); }
  void RecordWake(const WakeObservation& wake);

 private:
  std::map<ComputeStateKind, prometheus::Gauge*> compute_state_;
  std::map<PolicyState, prometheus::Gauge*> policy_state_;
  prometheus::Counter* cold_starts_;
  prometheus::Histogram* cold_start_duration_;
  prometheus::Family<prometheus::Counter>* api_requests_;
  prometheus::Counter* sessions_terminated_;
  prometheus::Counter* wakes_by_pgvigil_;
  prometheus::Counter* wakes_by_other_;
  prometheus::Histogram* observed_cold_start_;
};

struct NeonStatus {
  bool enabled = false;
  std::string endpoint_id;
  std::string project_id;
  bool pooler = false;
  IdlePolicy idle_policy = IdlePolicy::kAllowSuspend;
  bool api_configured = false;
  std::optional<PolicyState> policy_state;
  std::string policy_reason;
  ComputeStateKind compute_state = ComputeStateKind::kUnknown;
  std::optional<long long> suspend_timeout_seconds;
  std::optional<SystemTime> last_active;
  std::optional<SystemTime> last_api_at;
  std::string last_api_outcome;  // "ok" or ApiErrorKindName; "" when never polled
  std::string last_api_error;    // the error's message (already key-free)
  std::optional<double> last_cold_start_seconds;
  std::uint64_t cold_starts = 0;
  std::string compute_reason;  // set while the state is unknown
  std::string compute_hint;
  std::uint64_t wakes_by_pgvigil = 0;
  std::uint64_t wakes_by_other = 0;
  std::optional<WakeObservation> last_wake;
  std::optional<SystemTime> last_wake_at;
  double api_poll_interval_seconds = 0;  // the resolution of wakes by "other"
  std::vector<std::string> hints;        // e.g. the -pooler sampling hint, TLS/endpoint warnings
};

// {"mode":"on"|"off","endpoint_id":...,"project_id":...,"pooler":bool,"idle_policy":...,
//  "policy":{"state":...,"reason":...},"compute":{"state":...,"suspend_timeout_seconds":...,
//  "last_active":RFC3339},"api":{"configured":bool,"last_outcome":...,"last_error":...,"last_at":...},
//  "cold_starts":{"total":n,"last_seconds":x},"hints":[...]}; absent values are null.
nlohmann::json NeonStatusSection(const NeonStatus& status);
std::string NeonStatusJson(const NeonStatus& status);  // the same as text

}  // namespace pgvigil
