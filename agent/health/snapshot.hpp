#pragma once
// Snapshot: everything the HTTP side may show, published by the scheduler as an immutable value.
// SnapshotStore is thread-safe: one writer (scheduler), many readers (HTTP threads).
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "db/pool.hpp"
#include "health/health_model.hpp"

namespace pgvigil {

// Exceptions caught in the scheduler thread (a bug, not a database failure), by component.
struct InternalErrors {
  std::map<std::string, std::uint64_t> by_component;
  std::string last;  // "component: what"; "" when none
  std::optional<std::chrono::system_clock::time_point> last_at;
};

struct Snapshot {
  DbState state = DbState::kStarting;
  std::string reason;
  std::optional<std::string> error_kind;  // ErrorKindName of the last failure, if any
  std::optional<std::string> hint;        // what to do about the last failure
  bool any_probe_finished = false;
  std::optional<double> last_latency_seconds;
  std::optional<std::chrono::system_clock::time_point> last_probe_at;
  std::optional<std::chrono::system_clock::time_point> last_success_at;
  int consecutive_failures = 0;
  PoolStats pool;
  std::string target;                      // redacted URL
  std::uint64_t sequence = 0;              // increments on every publish
  std::optional<PoolStats> sampling_pool;  // neon.sampling_url's pool, when configured
  // Feature sections of /health, each built once by its owner as a JSON value (null = off) and
  // serialised once with the rest (invalid UTF-8 replaced); never JSON text parsed again.
  nlohmann::json sampling;
  nlohmann::json tracing;
  nlohmann::json neon;
  nlohmann::json db_stats;
  nlohmann::json stats_leader;  // fleet/stats_leader.hpp StatusJson; null without statistics
  nlohmann::json jobs;          // the scheduler's jobs: runs, outcome, duration, deferred windows
  InternalErrors internal_errors;
};

class SnapshotStore {
 public:
  SnapshotStore() : current_(std::make_shared<const Snapshot>()) {}
  void Publish(std::shared_ptr<const Snapshot> s) {
    std::lock_guard lock(mu_);
    current_ = std::move(s);
  }
  std::shared_ptr<const Snapshot> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> current_;
};

// Process-level flags the probes read: written by main/scheduler, read by HTTP threads.
struct Lifecycle {
  std::atomic<bool> config_loaded{false};
  std::atomic<bool> listening{false};
  std::atomic<bool> shutting_down{false};
  // steady_clock nanoseconds since epoch of the scheduler's last loop turn (its heartbeat).
  std::atomic<std::int64_t> heartbeat_ns{0};
  std::chrono::nanoseconds heartbeat_stale_after{std::chrono::seconds(60)};
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();

  void Beat() {
    heartbeat_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                       std::memory_order_relaxed);
  }
  bool SchedulerAlive() const {
    auto last = std::chrono::nanoseconds(heartbeat_ns.load(std::memory_order_relaxed));
    return last.count() != 0 &&
           std::chrono::steady_clock::now().time_since_epoch() - last < heartbeat_stale_after;
  }
};

}  // namespace pgvigil
