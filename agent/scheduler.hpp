#pragma once
// Scheduler: the one thread that talks to the database. It owns the pool, runs the probe on its
// timer, feeds the health model and metrics, and publishes an immutable Snapshot after every
// turn. Its loop turns at least once a second (the heartbeat /livez watches), and every database
// call it makes has a deadline, so it never hangs.
// Start/Stop/RequestWake are thread-safe; everything else is private to the thread.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>

#include "config/settings.hpp"
#include "db/pool.hpp"
#include "health/health_model.hpp"
#include "health/snapshot.hpp"
#include "telemetry/metrics.hpp"

namespace pgvigil {

class Scheduler {
 public:
  Scheduler(const Settings& settings, SnapshotStore& snapshots, Lifecycle& lifecycle,
            AgentMetrics& metrics);
  ~Scheduler();  // stops the thread first

  void Start();
  // Stops the loop (an in-flight database call ends at its deadline), closes the pool.
  void Stop();
  // Asks the loop to probe now (POST /wake, tests). Thread-safe, never blocks on the database.
  void RequestWake();

 private:
  void Run(std::stop_token stop);
  void Probe();
  void Publish();
  void WaitUntil(std::stop_token& stop, std::chrono::steady_clock::time_point t);

  const Settings& settings_;
  SnapshotStore& snapshots_;
  Lifecycle& lifecycle_;
  AgentMetrics& metrics_;
  Pool pool_;
  HealthModel health_;
  std::uint64_t sequence_ = 0;

  std::mutex wake_mu_;
  std::condition_variable_any wake_cv_;
  bool wake_requested_ = false;
  std::jthread thread_;  // last: started last, stopped first
};

}  // namespace pgvigil
