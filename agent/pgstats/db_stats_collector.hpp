#pragma once
// DbStatsCollector: database statistics under postgres_exporter's metric names and labels, so
// dashboards and alerts written for it (Grafana 9628, postgres-mixin) keep working. The facade
// the scheduler calls: it runs the collectors of AllCollectors() (collector.hpp; one file each in
// collectors/, which document their metrics), each on its own interval and under its own
// deadline, never per scrape (the scheduler skips it while the database is `idle`, so a Neon
// compute may sleep).
//
// Cadence, set by cost: a collector's interval is stats.intervals.<name>, else
// max(stats.interval, its min_interval()) — the cheap counters every stats.interval (30 s),
// database sizes every 5 min (only databases written to since; all hourly), settings and static
// info every 10 min, postmaster every 5 min. Its deadline is stats.timeouts.<name>, else
// query_timeout. A run that passes its deadline is cancelled on the server, counted (errors and
// "timeouts" in StatusJson) and loses the connection, like any timeout; the collectors it kept
// from running are still due and run first in the next window (most overdue first).
// A collector that fails (permission, missing view, timeout) is counted and the others still
// run. No stale series (as postgres_exporter, which exports nothing it could not read): a
// collector that fails removes its series at once, and Forget() removes every collector's (the
// database is down or asleep, or this sidecar is not the stats leader). Series whose labels
// vanished (a dropped database) are removed on the next successful run.
//
// The bundle (collector_bundle.hpp): the due collectors that run one parameterless statement
// (Collector::BundleSql: stat_database, stat_activity, locks, stat_bgwriter, replication,
// neon_lfc, postmaster) go to the server as ONE statement, at the place of the most overdue of
// them; each publishes from its part of the reply and keeps its own metrics (its
// pgvigil_collector_duration_seconds is then the bundle's), failure semantics and interval.
// The bundle's deadline is the latest of its parts' deadlines, capped at the window's end; its
// expected duration is its last one. When the bundle fails with a statement error (a missing
// view, a permission, an old server), its parts run alone this time, and one that fails alone
// leaves the bundle: it is "alone". A bundle that times out is cancelled on the server and
// counted; its parts fail this run (the connection goes) and run alone next time, so the slow
// one is found and leaves the bundle. database, settings and static run alone.
//
// Recovery (most causes are transient: a replica's recovery conflict, a lock timeout, a
// terminated session, a grant or an extension that comes later). A collector that is alone is
// back in the bundle after `readmit_after` successes alone in a row: 1 the first time (a
// transient error is gone by its next run, and the next bundle failure finds it again, by the
// same rule, without breaking the others), doubled each time it has to leave again, at most 32,
// so one that flaps gets back in ever more rarely. A timeout counts as any failure: one that
// times out alone stays out; one that succeeds alone may time the bundle out again, which costs
// that run's parts and the session, and doubles its count again.
// A bundle that fails three times in a row while every part works alone is switched off (its
// parts run alone) and retried after 10 x stats.interval (5 min at 30 s); a retry that fails so
// again doubles the wait, up to 16 x that (80 min); one that fails for a part's sake (that part
// leaves) is retried next run; a success switches it back on and resets the wait.
//
// Cost per run, with N parts (N <= 7): in the bundle 1 statement. A part that keeps failing
// costs N+1 on its first failure, then 2 per run (the bundle without it, itself alone: 4 a
// minute at 30 s), as before: it is never re-admitted without a success alone. One that flaps
// pays N-1 more for each re-admission that fails, once per 33 runs at most once at 32 (< 0.4
// statements a minute at 30 s). Switched off: N per run, as before, plus 1 per retry (at most 1
// per 10 runs, then per 160). Each transition is logged once: a collector leaving or coming
// back, the bundle switched off, retried in vain, back on. /health (StatusJson) shows who is
// alone, since when and why, and when the switched-off bundle is tried again.
//
// Thread-safety: RunDue/RunAll/Forget are called by one thread (the scheduler) at a time;
// StatusJson, Due and NextDue may be called from any thread. The registry must outlive it.
#include <prometheus/registry.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "pgstats/collector.hpp"
#include "pgstats/pg_values.hpp"

namespace pgvigil {

struct DbStatsOptions {
  std::chrono::milliseconds interval{30000};                   // the cheap collectors' interval
  std::chrono::milliseconds query_timeout{5000};               // a collector run's default deadline
  std::map<std::string, std::chrono::milliseconds> intervals;  // per collector (stats.intervals)
  std::map<std::string, std::chrono::milliseconds> timeouts;   // per collector (stats.timeouts)
  bool bundle = true;  // the due cheap collectors as one statement (false: each alone; tests)
};

struct DbStatsRunStatus {
  int succeeded = 0;
  int failed = 0;
  int skipped = 0;               // due but not run: window or deadline passed, connection lost
  bool connection_lost = false;  // the caller must discard the connection
  bool ok() const { return failed == 0 && skipped == 0; }
};

class DbStatsCollector {
 public:
  explicit DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options = {});
  // With these collectors instead of AllCollectors() (tests).
  DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options,
                   std::vector<std::unique_ptr<Collector>> collectors);
  ~DbStatsCollector();
  DbStatsCollector(const DbStatsCollector&) = delete;
  DbStatsCollector& operator=(const DbStatsCollector&) = delete;

  // Runs the collectors due at `now`, most overdue first, each under min(its deadline,
  // window_end). Stops before one whose expected duration (its last one) would pass window_end,
  // unless nothing ran yet in this window (so none starves); the rest stay due for the next
  // window. Stops early if the connection breaks; the rest are reported as skipped.
  DbStatsRunStatus RunDue(Connection& conn, SteadyTime now, SteadyTime window_end);
  // Every collector, due or not, in list order, each bounded by min(deadline, its deadline)
  // (tests, and a first full picture).
  DbStatsRunStatus RunAll(Connection& conn, SteadyTime deadline);
  DbStatsRunStatus RunAll(Connection& conn);  // bounded by one interval

  bool Due(SteadyTime now) const;  // any collector due at `now`
  SteadyTime NextDue() const;      // when the next collector is due (past = now)
  // Drops every series the collectors export (database down or asleep, or not the leader); all
  // collectors are due again.
  void Forget();
  std::chrono::milliseconds interval() const { return options_.interval; }

  // For /health: {"interval_seconds", "last_run", "series_exported", "collectors": {name: {"ok",
  // "ran", "last_success", "duration_seconds", "interval_seconds", "timeout_seconds", "errors",
  // "timeouts", "error"?}}, "bundle": {"enabled", "runs", "failures", "timeouts",
  // "duration_seconds", "last_parts", "alone" (names), "alone_detail": {name: {"since",
  // "reason", "successes_alone", "readmit_after"}}, "error"?, and when switched off "off_since",
  // "retry_at" (past: at the next run), "retry_backoff_seconds"}}. Error texts come scrubbed
  // from DbError.
  nlohmann::json StatusJson() const;

 private:
  struct State;
  DbStatsOptions options_;
  std::unique_ptr<State> state_;
};

// The window logic, pure (exposed for tests). Thread-safe.
// Indices of the collectors due at `now` (next_due <= now), most overdue first, ties in list
// order.
std::vector<std::size_t> DueOrder(const std::vector<SteadyTime>& next_due, SteadyTime now);
// Whether a collector expected to take `expected` may start at `now` in a window ending at
// `window_end`: it fits, or it is the first of the window (which then runs capped at window_end).
bool FitsWindow(SteadyTime now, std::chrono::steady_clock::duration expected, SteadyTime window_end,
                bool first_in_window);
// A collector's interval: its override, else max(base, its minimum).
std::chrono::milliseconds CollectorInterval(const std::string& name, std::chrono::milliseconds min,
                                            const DbStatsOptions& options);

}  // namespace pgvigil
