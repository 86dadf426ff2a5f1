#pragma once
// Foreign-activity detection for the suspend policy: "has anybody other than pgvigil used the
// database since the last look?". The scheduler runs kActivitySql on its own connection after
// each successful probe (one statement, extended protocol, no SET/PREPARE/temp objects: safe
// through Neon's -pooler) with $1 = pgvigil's application_name, and feeds the row to an
// ActivityTracker.
//
// Signals, chosen so that pgvigil's own work never counts:
//  - other client backends running something right now (state not idle), excluding our pid,
//    our application_name and Neon's internal role (cloud_admin);
//  - the newest state_change/backend_start among those other sessions moved forward: a
//    long-lived application session ran a query between two looks;
//  - sum(pg_stat_database.sessions) grew by more than pgvigil's own connects: a short-lived
//    session came and went between two looks. `sessions` counts client backends only (not
//    autovacuum), which is why it is used instead of xact_commit: autovacuum workers and every
//    connection start-up commit transactions, so "transactions minus our own" drifts upwards and
//    would keep a compute awake forever. Through a pooler our connects do not map to server
//    sessions, so the session counter is ignored there.
// Not thread-safe: owned by the scheduler. Pure (no I/O).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace pgvigil {

// Columns: other_sessions, other_active, other_last_change (epoch seconds, 0 when none),
// sessions_total, xact_total (informational), server_now (epoch seconds).
extern const char* const kActivitySql;

struct ActivitySample {
  long long other_sessions = 0;
  long long other_active = 0;
  double other_last_change = 0;  // epoch seconds
  long long sessions_total = 0;
  long long xact_total = 0;
  double server_now = 0;
};

// Parses the single row of kActivitySql given as text cells in column order. nullopt (and
// `error` set) when the shape or a number is wrong.
std::optional<ActivitySample> ParseActivityRow(const std::vector<std::string>& cells,
                                               std::string* error = nullptr);

struct ActivityVerdict {
  bool foreign = false;
  std::string reason;  // what was seen ("2 other sessions active", ...) or "" when nothing
};

class ActivityTracker {
 public:
  // use_session_counter: false through a pooler (see above).
  explicit ActivityTracker(bool use_session_counter = true);
  // `own_connects_total`: cumulative count of connections pgvigil opened to this server (pool
  // opened_total plus any other connection of ours), read when the sample was taken.
  ActivityVerdict Observe(const ActivitySample& sample, std::uint64_t own_connects_total);
  // Forget the baseline (after the pool was closed and the compute may have restarted: the
  // counters reset on a Neon suspend).
  void Reset();

 private:
  bool use_session_counter_;
  bool have_baseline_ = false;
  double last_change_seen_ = 0;
  // High-water mark of sessions_total - own_connects. Our connects are counted by us before the
  // server's statistics show them, so the difference only dips for our own sessions and rises
  // above the mark only for somebody else's.
  long long foreign_sessions_mark_ = 0;
};

// Runs kActivitySql on `conn` (within `deadline`) and feeds `tracker`. An error is a DbError
// (the query failed) or a kProtocol error when the row has the wrong shape.
DbResult<ActivityVerdict> ProbeActivity(Connection& conn, const std::string& application_name,
                                        ActivityTracker& tracker, std::uint64_t own_connects_total,
                                        SteadyTime deadline);

}  // namespace pgvigil
