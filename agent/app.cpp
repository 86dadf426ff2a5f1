#include "app.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "health/snapshot.hpp"
#include "http/server.hpp"
#include "scheduler.hpp"
#include "telemetry/metrics.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace pgvigil {

namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Kills the process if shutdown overruns its bound: a stuck shutdown must not outlive the
// grace period the orchestrator gives us.
class ShutdownWatchdog {
 public:
  explicit ShutdownWatchdog(Millis bound)
      : thread_([this, bound] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, bound, [this] { return done_; })) {
            LogError("shutdown took too long; exiting now",
                     {{"shutdown_timeout", FormatDuration(bound)}});
            _exit(1);
          }
        }) {}
  ~ShutdownWatchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int RunAgent(const Settings& settings) {
  BlockShutdownSignals();
  AgentMetrics metrics(kVersion);
  SnapshotStore snapshots;
  Lifecycle lifecycle;
  lifecycle.config_loaded = true;

  Scheduler scheduler(settings, snapshots, lifecycle, metrics);
  HttpServer http(settings, snapshots, lifecycle, metrics);
  std::string error;
  if (!http.Start(&error)) {
    LogError("cannot start the HTTP listener", {{"error", error}});
    return 1;
  }
  lifecycle.listening = true;
  scheduler.Start();
  LogInfo("pgvigil started", {{"version", kVersion},
                              {"listen", settings.http.listen},
                              {"port", std::to_string(http.port())},
                              {"target", settings.database.conn.Redacted()},
                              {"config", settings.config_path.empty() ? "(defaults)"
                                                                      : settings.config_path}});

  sigset_t set = ShutdownSignals();
  int sig = 0;
  while (true) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      LogInfo("SIGHUP ignored; restart pgvigil to reload its configuration");
      continue;
    }
    break;
  }

  // Readiness fails at once; then the scheduler stops (its DB call ends at its deadline) and
  // closes the pool; last, the HTTP server finishes in-flight requests.
  lifecycle.shutting_down = true;
  LogInfo("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  ShutdownWatchdog watchdog(settings.http.shutdown_timeout);
  scheduler.Stop();
  http.Stop();
  LogInfo("stopped");
  return 0;
}

}  // namespace pgvigil
