#pragma once
// Snapshot: everything the HTTP side may show, published by the scheduler as an immutable value.
// SnapshotStore is thread-safe: one writer (scheduler), many readers (HTTP threads).
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "db/pool.hpp"
#include "health/health_model.hpp"

namespace pgvigil {

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
  std::string target;          // redacted URL
  std::uint64_t sequence = 0;  // increments on every publish
  // Extra sections rendered verbatim into /health (sampling, tracing, neon); JSON text each.
  std::string sampling_json;
  std::string tracing_json;
  std::string neon_json;
  std::string db_stats_json;
  std::string stats_leader_json;     // fleet/stats_leader.hpp StatusJson; "" without database stats
  std::string internal_errors_json;  // exceptions caught in the scheduler thread, by component
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
