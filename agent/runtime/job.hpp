#pragma once
// Job: one periodic task of the scheduler (the probe, a sampler, the database statistics).
// Adding a periodic database task is one job (or one collector of the statistics job) plus one
// line in the list of jobs (app.cpp).
//
// The probe has priority: the other jobs run in the window between two probes. Their JobContext
// carries window_end (next probe due minus a small margin); every statement a job runs must be
// bounded by min(its own deadline, window_end) — use Bound(). A job whose expected duration (its
// last one) does not fit the rest of the window waits for the next window; a job that has more to
// do returns kMoreToDo and continues in a later window.
// Jobs run on the scheduler thread only; Status() is called there too (when publishing).
#include <algorithm>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "util/clock.hpp"

namespace pgvigil {

struct JobContext {
  const Clock& clock;
  std::chrono::steady_clock::time_point started;     // when the scheduler started this run
  std::chrono::steady_clock::time_point window_end;  // finish before: the probe is due then
  bool woken = false;                                // POST /wake asked for a look at the database
  bool database_ready = true;  // probing and the last probe succeeded: jobs may use the database
  // Runs `fn`; an exception is caught, counted under `component` and shown in /health (false).
  // For side work (spans) whose failure must not cost the job its session.
  std::function<bool(const char* component, const std::function<void()>& fn)> guarded;

  // `deadline` capped at the window's end. Real steady_clock time (libpq polls against it).
  std::chrono::steady_clock::time_point Bound(
      std::chrono::steady_clock::time_point deadline) const {
    return std::min(deadline, window_end);
  }
  std::chrono::steady_clock::duration Remaining() const { return window_end - clock.Steady(); }
};

struct JobOutcome {
  enum class Kind {
    kDone,      // next run one interval after this one started
    kMoreToDo,  // call again in the next window
    kSkipped,   // nothing done (no connection, database not ready); next run one interval on
    kFailed,    // counted as this job's failure; next run one interval on
  };
  Kind kind = Kind::kDone;
  // When set, replaces the next run computed from `kind` (the probe: backoff, Neon policy).
  std::optional<std::chrono::steady_clock::time_point> next_run;

  static JobOutcome Done() { return {}; }
  static JobOutcome MoreToDo() { return {Kind::kMoreToDo, std::nullopt}; }
  static JobOutcome Skipped() { return {Kind::kSkipped, std::nullopt}; }
  static JobOutcome Failed() { return {Kind::kFailed, std::nullopt}; }
};

class Job {
 public:
  virtual ~Job() = default;
  // Stable name: label value of pgvigil_internal_errors_total{component} and key in /health.
  virtual std::string_view name() const = 0;
  virtual std::chrono::milliseconds interval() const = 0;
  // Whether this job uses the database (then it waits while the database is not ready).
  virtual bool NeedsDatabase() const { return true; }
  virtual JobOutcome Run(JobContext& ctx) = 0;
  // This job's /health status (what it last did); null when it has nothing to say.
  virtual nlohmann::json Status() const { return nullptr; }
};

}  // namespace pgvigil
