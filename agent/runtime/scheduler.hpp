#pragma once
// Scheduler: the one thread that talks to the database, as a runner of jobs. It turns at least
// once a second (the heartbeat /livez watches). The probe (ProbeJob) has priority: it runs when
// due, on POST /wake, or when the Neon policy asks; right after a successful probe a window opens
// until the next probe is due (minus kWindowMargin), and the other jobs that are due run in it,
// earliest first, each bounded by the window (JobContext::Bound). A job whose expected duration
// (its last one) does not fit the rest of the window waits for the next window; one deferred
// kMaxDeferrals windows in a row runs anyway (still bounded), so a job longer than any window
// makes progress and is measured again. After every turn `publish` runs.
// By traffic (probe.reuse_traffic): when the probe is due, the database was ready at the last
// probe, and jobs on the probe's target (hooks.on_probe_target) are due, the cheapest of them
// (last run within kBeforeProbeBudget) run first, each bounded by min(its deadline, now +
// probe.timeout) so a hung server is found as fast as by a probe, until a statement on the
// probe's pool succeeded (stop at the first failure); the probe then lets that success stand
// for its own statement (ProbeJob). The other due jobs run in the window after the probe as
// always. Never on POST /wake or a probe the Neon policy asked for (those probe first).
// The fleet gate (hooks.may_run_jobs) is asked there too, inside the same bounds (idle sessions
// only, now + probe.timeout): when it says no (a stats follower) no job runs, but a statement it
// ran itself on the probe's pool (the follower's election retry) stands for the probe when it
// succeeded and none failed; else the probe statement runs. On a frozen server a statement cut
// at now + probe.timeout leaves its session broken, so the probe statement after it reconnects
// (bounded by database.connect_timeout): that tick's failure shows up to that much later than a
// SELECT 1 on the open session would show it (jobs ahead of the probe and the fleet gate alike).
// No exception leaves the thread: one thrown by a job (or the loop itself, or publish) is caught,
// counted in pgvigil_internal_errors_total{component = job name}, remembered for /health, and
// the loop goes on.
// Start/Stop/RequestWake are thread-safe; Turn/NextWake are for one thread (the loop's, or a
// test's that drives the scheduler with a ManualClock and no thread); the rest is private to it.
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "health/snapshot.hpp"
#include "runtime/job.hpp"
#include "runtime/probe_job.hpp"
#include "telemetry/metrics.hpp"
#include "util/clock.hpp"

namespace pgvigil {

struct SchedulerHooks {
  std::function<void()> publish;   // after every turn: build and publish a snapshot
  std::function<void()> maintain;  // after every turn: pool upkeep
  std::function<void()> shutdown;  // when the loop ends: close the pools
  // Before the first job of a window (only when one is due): may the jobs run now? (fleet: only
  // the elected stats leader runs database-wide jobs). Unset = always. Asked ahead of a due probe
  // (between before_probe(true) and before_probe(false)), a successful statement it sends on the
  // probe's pool stands for the probe even when it answers no (see By traffic above).
  std::function<bool(const JobContext&)> may_run_jobs;
  // Whether a job's statements go to the probe's pool (the main pool), so that their success
  // may stand for the probe. Unset = no job does (a SELECT 1 at every probe).
  std::function<bool(const Job&)> on_probe_target;
  // Called with true before jobs run ahead of a due probe and with false after: meanwhile they
  // must not open connections (ConnectionSource::SetIdleSessionsOnly). Unset = nothing to do.
  std::function<void(bool)> before_probe;
};

class Scheduler {
 public:
  static constexpr auto kHeartbeat = std::chrono::seconds(1);
  static constexpr auto kWindowMargin = std::chrono::milliseconds(10);
  static constexpr int kMaxDeferrals = 3;
  // A job runs before a due probe only when its last run took at most this long: the probe
  // keeps its cadence (its gap grows by that job's duration at most).
  static constexpr auto kBeforeProbeBudget = std::chrono::milliseconds(25);

  // Everything must outlive the scheduler. `jobs` run in the windows, in this order when equally
  // due.
  Scheduler(const Clock& clock, Lifecycle& lifecycle, AgentMetrics& metrics, ProbeJob& probe,
            std::vector<Job*> jobs, SchedulerHooks hooks);
  ~Scheduler();  // stops the thread first

  void Start();
  // Stops the loop after the job in flight (the owner triggers the AbortSignal first so a
  // database call ends at once), then runs hooks.shutdown.
  void Stop();
  // Asks the loop to look at the database now (POST /wake). Thread-safe, never blocks.
  void RequestWake();

  // One turn of the loop: Neon policy, the probe when due, then the window's jobs; pool upkeep.
  void Turn(bool woken);
  // When the loop should turn next (at most kHeartbeat from now).
  std::chrono::steady_clock::time_point NextWake() const;
  // Runs `fn`; an exception is caught, counted under `component` and remembered (false).
  bool Guarded(const char* component, const std::function<void()>& fn);

  InternalErrors internal_errors() const { return errors_; }
  // Every job due at once (the next window runs them): after their series were dropped.
  void MakeAllDue();
  // /health "jobs": per job its interval, runs, outcome, duration, deferrals and Status().
  nlohmann::json JobsStatus() const;

 private:
  struct Entry {
    Job* job = nullptr;
    std::chrono::steady_clock::time_point due{};
    std::chrono::steady_clock::duration expected{0};  // the last run's duration
    int deferrals = 0;                                // windows waited in a row
    std::uint64_t runs = 0, failures = 0, deferred_total = 0;
    std::string last_outcome;
    std::optional<std::chrono::system_clock::time_point> last_run_at;
  };
  void Run(std::stop_token stop);
  enum class Gate { kUnasked, kPassed, kDenied };  // hooks.may_run_jobs, asked once per probe
  void RunWindow();
  // Before a due probe: the due jobs on the probe's target, cheapest first, until a statement
  // on the probe's pool succeeded or a job failed. Nullopt when nothing ran.
  std::optional<TickTraffic> RunBeforeProbe();
  bool MayRunJobs(std::chrono::steady_clock::time_point window_end);
  // Runs one job; false when it failed, was skipped or threw.
  bool RunEntry(Entry& e, std::chrono::steady_clock::time_point window_end);
  JobContext Context(std::chrono::steady_clock::time_point window_end, bool woken);

  const Clock& clock_;
  Lifecycle& lifecycle_;
  AgentMetrics& metrics_;
  ProbeJob& probe_;
  std::vector<Entry> entries_;
  SchedulerHooks hooks_;
  std::chrono::steady_clock::time_point probe_due_{};
  Gate gate_ = Gate::kUnasked;
  InternalErrors errors_;

  std::mutex wake_mu_;
  std::condition_variable_any wake_cv_;
  bool wake_requested_ = false;
  std::jthread thread_;  // last: started last, stopped first
};

}  // namespace pgvigil
