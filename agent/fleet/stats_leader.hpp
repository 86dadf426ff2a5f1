#pragma once
// StatsLeader: among the sidecars watching one database, elects the one that runs the
// database-wide collectors (pgstats) and the statement/activity samplers, so a Deployment of N
// pods costs the database what one pgvigil costs and dashboards count each figure once.
//
// How: a session advisory lock, pg_try_advisory_lock(kStatsLeaderLockKey), taken on the very
// connection those jobs run on. Advisory locks are per database, so the key is a constant. The
// lock lives as long as that session: the leader's process killed, its connection dropped or its
// Neon compute suspended (57P01) all free it at once, and a follower takes it on its next try.
// - A follower tries again every `retry_interval` (1.5 collector intervals): one cheap
//   statement, and only when the scheduler is querying anyway (the Neon suspend policy lets it);
//   the statement's time counts as pgvigil's own usage, so it never reads as an app's activity.
//   Ahead of a probe, on the probe's session, the try stands for the probe's SELECT 1
//   (runtime/scheduler.hpp, By traffic), and the caller passes `early` (half a probe interval):
//   the retry then runs at the probe tick nearest its due time, up to `early` before it, and
//   the next one is due retry_interval after the due time it was run for (not after the tick).
//   So the tries keep their designed pace on average (never drifting a tick later each time),
//   and two tries are at most retry_interval + one probe interval apart, as when a retry waited
//   for the first tick after its due time: the hand-over bound (two collector intervals while
//   probe.interval <= half a collector interval) is unchanged.
// - A leader issues no statement at all while its session lasts (same connection object, same
//   backend pid); on a new session it tries again.
// - Behind a pooler (the server's pg_backend_pid() differs from the session's: PgBouncer,
//   Neon's -pooler host) a session lock would stick to a shared server connection: the lock is
//   never taken there and every sidecar collects (role all_collect, with a hint: use
//   neon.sampling_url, the direct host). stats.election = off: all_collect as well.
// - OnDatabaseLost (probe failed, database down or asleep): role none until the next check.
// Roles: leader, follower, all_collect (each collects), none (nobody here collects right now).
// Metric pgvigil_stats_leader: 1 while this sidecar collects (leader or all_collect), else 0.
// Thread-safety: MayCollect/OnDatabaseLost belong to the scheduler thread; StatusJson and role()
// may be called from any thread.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"
#include "db/connection.hpp"

namespace pgvigil {

// "pgvigil" in ASCII. In pg_locks: classid = key >> 32, objid = key & 0xffffffff, objsubid = 1.
inline constexpr std::int64_t kStatsLeaderLockKey = 0x7067766967696C;

enum class StatsRole { kNone, kLeader, kFollower, kAllCollect };
std::string_view StatsRoleName(StatsRole r);  // "none", "leader", "follower", "all_collect"

class StatsLeader {
 public:
  StatsLeader(StatsElection mode, std::chrono::milliseconds retry_interval,
              prometheus::Registry& registry);

  // Before the database-wide jobs, on the connection they are about to use: may this sidecar
  // run them now? Runs at most one short statement, bounded by `deadline` (see above). A failed
  // check (timeout, lost socket) answers false and leaves the connection broken for the caller.
  // `early`: a follower's retry due within that much of `now` runs now (see above).
  bool MayCollect(Connection& conn, SteadyTime now, SteadyTime deadline,
                  std::chrono::milliseconds early = std::chrono::milliseconds(0));
  // The probe failed or the database sleeps: the session holding the lock is gone or about to
  // be; nobody here collects until the next MayCollect decides again.
  void OnDatabaseLost(std::string_view why);

  StatsRole role() const;
  // For /health: {"election": "auto"|"off", "role", "why", "since", "leader_pid", "lock_key",
  // "hint"?}. leader_pid: the backend pid holding the lock as last seen (a follower's view of
  // the leader), null when unknown.
  nlohmann::json StatusJson() const;

 private:
  void Set(StatsRole role, std::string why, std::optional<int> leader_pid = std::nullopt,
           std::string hint = "");

  const StatsElection mode_;
  const std::chrono::milliseconds retry_interval_;
  prometheus::Gauge* leader_gauge_;
  // The session holding the lock (leader), or the one found pooled (all_collect): compared by
  // address and backend pid, never dereferenced.
  const Connection* checked_conn_ = nullptr;
  int checked_pid_ = 0;
  // Follower: when to try the lock again; leader: when to re-check, from another pooled session,
  // that its own session still holds it.
  std::optional<SteadyTime> next_try_;

  mutable std::mutex mu_;  // guards the status below
  StatsRole role_ = StatsRole::kNone;
  std::string why_ = "no connection yet";
  std::string hint_;
  std::optional<int> leader_pid_;
  std::chrono::system_clock::time_point since_;
};

}  // namespace pgvigil
