#include "health/health_model.hpp"

#include <algorithm>
#include <chrono>
#include <string>

namespace pgvigil {

std::string_view DbStateName(DbState s) {
  switch (s) {
    case DbState::kStarting:
      return "starting";
    case DbState::kUp:
      return "up";
    case DbState::kDegraded:
      return "degraded";
    case DbState::kDown:
      return "down";
    case DbState::kIdle:
      return "idle";
    case DbState::kWaking:
      return "waking";
    case DbState::kMisconfigured:
      return "misconfigured";
  }
  return "unknown";
}

bool DbStateUsable(DbState s) {
  return s == DbState::kUp || s == DbState::kDegraded || s == DbState::kIdle;
}

namespace {

std::string DescribeError(const DbError& e) {
  std::string out(ErrorKindName(e.kind));
  if (!e.sqlstate.empty()) out += " (SQLSTATE " + e.sqlstate + ")";
  if (!e.message.empty()) out += ": " + e.message;
  return out;
}

std::string Ms(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

}  // namespace

HealthModel::HealthModel(ProbeSettings settings) : settings_(settings) {}

bool HealthModel::Transition(DbState next, std::string reason) {
  bool changed = next != state_;
  state_ = next;
  reason_ = std::move(reason);
  return changed;
}

bool HealthModel::Observe(const ProbeResult& result) {
  ProbeResult r = result;
  if (r.ok && r.by_traffic) {
    r.latency = measured_latency_;  // nothing measured: the last measured latency stands
  } else if (r.ok) {
    measured_latency_ = r.latency;
  }
  last_ = r;
  const std::size_t window = std::max<std::size_t>(5, 2 * settings_.failure_threshold);
  recent_.push_back(r.ok);
  while (recent_.size() > window) recent_.pop_front();

  if (r.ok) {
    ++consecutive_successes_;
    consecutive_failures_ = 0;
    last_success_ = r.at;
    // Leaving an unhealthy state needs success_threshold successes in a row; a fresh start or
    // a wake-up needs one.
    const bool unhealthy = state_ == DbState::kDown || state_ == DbState::kMisconfigured;
    if (unhealthy && consecutive_successes_ < settings_.success_threshold) {
      reason_ = "recovering: " + std::to_string(consecutive_successes_) + " of " +
                std::to_string(settings_.success_threshold) + " successful probes";
      return false;
    }
    const auto failed = std::count(recent_.begin(), recent_.end(), false);
    if (r.latency > settings_.degraded_latency) {
      return Transition(DbState::kDegraded, "probe latency " + Ms(r.latency) + " over " +
                                                Ms(settings_.degraded_latency));
    }
    if (failed > 0 && state_ != DbState::kStarting && state_ != DbState::kIdle &&
        state_ != DbState::kWaking) {
      return Transition(DbState::kDegraded, std::to_string(failed) + " of the last " +
                                                std::to_string(recent_.size()) + " probes failed");
    }
    last_error_kind_.reset();
    return Transition(DbState::kUp, "");
  }

  ++consecutive_failures_;
  consecutive_successes_ = 0;
  DbError err = r.error.value_or(DbError{ErrorKind::kUnknown, "", "probe failed"});
  last_error_kind_ = err.kind;
  const std::string described = DescribeError(err);
  if (err.Misconfiguration()) return Transition(DbState::kMisconfigured, described);
  if (consecutive_failures_ >= settings_.failure_threshold) {
    return Transition(DbState::kDown, described);
  }
  const std::string count = " (" + std::to_string(consecutive_failures_) + " of " +
                            std::to_string(settings_.failure_threshold) + " failures before down)";
  switch (state_) {
    case DbState::kUp:
    case DbState::kDegraded:
      return Transition(DbState::kDegraded, described + count);
    default:  // starting, waking, idle, down, misconfigured keep their state until the threshold
      reason_ = described + count;
      return false;
  }
}

bool HealthModel::SetIdle(std::string reason) {
  consecutive_failures_ = 0;
  recent_.clear();
  return Transition(DbState::kIdle, std::move(reason));
}

bool HealthModel::SetWaking() { return Transition(DbState::kWaking, "compute is waking up"); }

}  // namespace pgvigil
