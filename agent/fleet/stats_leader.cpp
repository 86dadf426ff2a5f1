#include "fleet/stats_leader.hpp"

#include <utility>

#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

namespace {

// One round trip: is this session direct (the server's pid is the one the session was given),
// then, only if so, the lock; and who holds it now (for /health). The CASE keeps the lock from
// ever being taken through a pooler, where it would stick to a shared server connection.
constexpr const char* kTrySql =
    "/* pgvigil */ SELECT pg_backend_pid() = $2::int, "
    "CASE WHEN pg_backend_pid() = $2::int THEN pg_try_advisory_lock($1::bigint) ELSE false END, "
    "(SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = $3::oid AND objid = $4::oid AND objsubid = 1)";

constexpr const char* kPoolerHint =
    "this connection goes through a pooler (PgBouncer in transaction mode, Neon's -pooler "
    "host), where a session lock cannot elect a leader, so every sidecar collects database "
    "statistics; set neon.sampling_url to the direct host (without -pooler) to elect one, or "
    "stats.election = \"off\" to say that this is intended";

}  // namespace

std::string_view StatsRoleName(StatsRole r) {
  switch (r) {
    case StatsRole::kLeader:
      return "leader";
    case StatsRole::kFollower:
      return "follower";
    case StatsRole::kAllCollect:
      return "all_collect";
    case StatsRole::kNone:
      break;
  }
  return "none";
}

StatsLeader::StatsLeader(StatsElection mode, std::chrono::milliseconds retry_interval,
                         prometheus::Registry& registry)
    : mode_(mode),
      retry_interval_(retry_interval),
      leader_gauge_(&prometheus::BuildGauge()
                         .Name("pgvigil_stats_leader")
                         .Help("1 while this sidecar runs the database-wide collectors and the "
                               "statement/activity samplers (the elected stats leader, or every "
                               "sidecar when election is off or impossible), else 0")
                         .Register(registry)
                         .Add({})),
      since_(std::chrono::system_clock::now()) {
  if (mode_ == StatsElection::kOff) {
    Set(StatsRole::kAllCollect, "stats.election = off: every sidecar collects");
  }
}

void StatsLeader::Set(StatsRole role, std::string why, std::optional<int> leader_pid,
                      std::string hint) {
  const bool collects = role == StatsRole::kLeader || role == StatsRole::kAllCollect;
  leader_gauge_->Set(collects ? 1 : 0);
  std::lock_guard lock(mu_);
  if (role != role_) {
    since_ = std::chrono::system_clock::now();
    if (role != StatsRole::kNone || role_ == StatsRole::kLeader) {
      LogInfo("stats leadership changed", {{"from", std::string(StatsRoleName(role_))},
                                           {"to", std::string(StatsRoleName(role))},
                                           {"why", why}});
    }
  }
  role_ = role;
  why_ = std::move(why);
  leader_pid_ = leader_pid;
  hint_ = std::move(hint);
}

bool StatsLeader::MayCollect(Connection& conn, SteadyTime now, SteadyTime deadline,
                             std::chrono::milliseconds early) {
  if (mode_ == StatsElection::kOff) return true;
  const bool same_session = checked_conn_ == &conn && checked_pid_ == conn.backend_pid();
  const StatsRole current = role();
  if (same_session && (current == StatsRole::kLeader || current == StatsRole::kAllCollect)) {
    return true;  // the lock lives with the session: nothing to ask
  }
  // A follower holds the lock on no session, so its retry pace holds whichever pooled session
  // the caller brings: once per retry interval, not once per window. A leader called with
  // another session of its pool (the lock stays on the one that took it) re-checks at the same
  // pace that its session still holds it.
  if (next_try_ && now < *next_try_) {
    if (current == StatsRole::kFollower && now + early < *next_try_) return false;
    if (current == StatsRole::kLeader) return true;
  }
  // A follower's retry run for its due time (early, or at most `early` late): the next one is
  // due one interval after that time, so the tries keep their pace whatever the probe ticks.
  std::optional<SteadyTime> due_for;
  if (current == StatsRole::kFollower && next_try_ && now <= *next_try_ + early) {
    due_for = *next_try_;
  }
  const std::int64_t key = kStatsLeaderLockKey;
  auto res = conn.Exec(kTrySql,
                       {std::to_string(key), std::to_string(conn.backend_pid()),
                        std::to_string(static_cast<std::uint32_t>(key >> 32)),
                        std::to_string(static_cast<std::uint32_t>(key & 0xffffffff))},
                       deadline);
  if (!res || res->Rows() != 1) {
    const std::string error = res ? "no row" : res.error().message;
    checked_conn_ = nullptr;
    Set(StatsRole::kNone, "the leadership check failed: " + error);
    return false;
  }
  const QueryResult& r = *res;
  std::optional<int> holder;
  if (auto pid = r.Int(0, 2)) holder = static_cast<int>(*pid);
  if (current == StatsRole::kLeader && r.Text(0, 0) == "t" && r.Text(0, 1) != "t" && holder &&
      *holder == checked_pid_) {
    // Our own other session still holds the lock: still the leader (not a flap to follower,
    // which would forget every series); when that session closes, the lock is free again.
    next_try_ = now + retry_interval_;
    return true;
  }
  checked_conn_ = &conn;
  checked_pid_ = conn.backend_pid();
  if (r.Text(0, 0) != "t") {
    Set(StatsRole::kAllCollect, "behind a pooler: session locks cannot elect a leader", holder,
        kPoolerHint);
    return true;
  }
  if (r.Text(0, 1) == "t") {
    next_try_.reset();
    Set(StatsRole::kLeader, "holds the stats lock on its collecting session", conn.backend_pid());
    return true;
  }
  next_try_ = due_for.value_or(now) + retry_interval_;
  Set(StatsRole::kFollower,
      holder ? "another session holds the stats lock (backend pid " + std::to_string(*holder) + ")"
             : std::string("another session holds the stats lock"),
      holder);
  return false;
}

void StatsLeader::OnDatabaseLost(std::string_view why) {
  if (mode_ == StatsElection::kOff) return;
  checked_conn_ = nullptr;
  next_try_.reset();
  if (role() != StatsRole::kNone) Set(StatsRole::kNone, std::string(why));
}

StatsRole StatsLeader::role() const {
  std::lock_guard lock(mu_);
  return role_;
}

nlohmann::json StatsLeader::StatusJson() const {
  std::lock_guard lock(mu_);
  nlohmann::json j;
  j["election"] = mode_ == StatsElection::kOff ? "off" : "auto";
  j["role"] = std::string(StatsRoleName(role_));
  j["collects"] = role_ == StatsRole::kLeader || role_ == StatsRole::kAllCollect;
  j["why"] = why_;
  j["since"] = FormatRfc3339Utc(since_);
  j["leader_pid"] = leader_pid_ ? nlohmann::json(*leader_pid_) : nlohmann::json();
  j["lock_key"] = kStatsLeaderLockKey;
  if (!hint_.empty()) j["hint"] = hint_;
  return j;
}

}  // namespace pgvigil
