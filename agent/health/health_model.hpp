#pragma once
// HealthModel: turns a stream of probe results into the database state of DESIGN.md
// (starting, up, degraded, down, idle, waking, misconfigured) with failure/success hysteresis.
// Not thread-safe: owned by the scheduler; its state is copied into snapshots.
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "db/db_error.hpp"

namespace pgvigil {

enum class DbState { kStarting, kUp, kDegraded, kDown, kIdle, kWaking, kMisconfigured };
inline constexpr DbState kAllDbStates[] = {
    DbState::kStarting, DbState::kUp,     DbState::kDegraded,     DbState::kDown,
    DbState::kIdle,     DbState::kWaking, DbState::kMisconfigured};
std::string_view DbStateName(DbState s);  // "starting", "up", ..., "misconfigured"
// Usable for an application: up, degraded, idle.
bool DbStateUsable(DbState s);

struct ProbeResult {
  bool ok = false;
  // A success "by traffic": a statement of pgvigil's other work on the probe's pool succeeded
  // in this probe's tick and stood for the probe statement (probe.reuse_traffic). No latency
  // was measured: the model keeps the last measured one (latency is ignored here).
  bool by_traffic = false;
  std::chrono::nanoseconds latency{0};  // the probe query (or the failed attempt) duration
  std::chrono::system_clock::time_point at;
  std::optional<DbError> error;
  bool new_connection = false;
  std::chrono::nanoseconds connect_duration{0};
};

class HealthModel {
 public:
  explicit HealthModel(ProbeSettings settings);

  // Feeds one probe result. Returns true when the state changed. A result by traffic counts as
  // a success with the latency of the last probe that measured one (last() shows that one too).
  bool Observe(const ProbeResult& r);
  // Neon: the compute is asleep on purpose (healthy) / being woken. Return true on change.
  bool SetIdle(std::string reason);
  bool SetWaking();

  DbState state() const { return state_; }
  const std::string& reason() const { return reason_; }  // "" when up; error kind + message else
  std::optional<ErrorKind> last_error_kind() const { return last_error_kind_; }
  int consecutive_failures() const { return consecutive_failures_; }
  int consecutive_successes() const { return consecutive_successes_; }
  std::optional<ProbeResult> last() const { return last_; }
  std::optional<std::chrono::system_clock::time_point> last_success() const {
    return last_success_;
  }
  bool any_probe_finished() const { return last_.has_value(); }

 private:
  bool Transition(DbState next, std::string reason);
  ProbeSettings settings_;
  DbState state_ = DbState::kStarting;
  std::string reason_ = "no probe finished yet";
  std::optional<ErrorKind> last_error_kind_;
  int consecutive_failures_ = 0;
  int consecutive_successes_ = 0;
  std::deque<bool> recent_;  // last N outcomes (N = 2 * failure_threshold, at least 5)
  std::optional<ProbeResult> last_;
  std::chrono::nanoseconds measured_latency_{0};  // of the last successful probe statement
  std::optional<std::chrono::system_clock::time_point> last_success_;
};

}  // namespace pgvigil
