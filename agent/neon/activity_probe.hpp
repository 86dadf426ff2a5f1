#pragma once
// Foreign-activity detection for the suspend policy: "has anybody other than pgvigil done what
// keeps a Neon compute awake since the last look?". The scheduler runs kActivitySql on its own
// connection after each successful probe (one statement, extended protocol, no SET/PREPARE/temp
// objects: safe through Neon's -pooler) with $1 = pgvigil's application_name, and feeds the row
// to an ActivityTracker.
//
// The signals are Neon's own (compute_ctl, compute_tools/src/monitor.rs; see docs and
// tests/support/neon_sim.hpp), minus pgvigil's own share:
//  1. pg_stat_database over databases other than postgres/template0/template1:
//     - sum(sessions) grew by more than pgvigil's own connects to such databases (a
//       short-lived session came and went). High-water mark, as our connects are counted by us
//       before the server shows them. Ignored through a pooler (our connects are not sessions).
//     - sum(active_time) grew by more than pgvigil's own statement time on such databases
//       (client-side Exec time: an upper bound of our server-side active time). Statistics are
//       flushed lazily (up to ~10 s late), so the baseline is the highest (server - own) seen in
//       the last kActiveWindow: our time shows on our side first, the server's later, and the
//       difference only rises above that mark for somebody else's time.
//  2. other client backends (not our pid, not our application_name, not user cloud_admin — Neon's
//     own agents) in a state other than idle ('idle in transaction' counts); or the newest
//     state_change among them moved forward (a long-lived session ran a query between looks).
//  3. a walsender (not the walproposer), a running subscription, an autovacuum worker: Neon keeps
//     the compute up while they exist, so pgvigil keeps probing (verdict.keeps_awake).
// Not thread-safe: owned by the scheduler. Pure (no I/O) except ProbeActivity.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "db/connection.hpp"

namespace pgvigil {

// Columns: other_sessions, other_active, other_last_change (epoch seconds, 0 when none),
// sessions_total, active_time_ms (both over databases other than postgres/template0/template1),
// walsenders, subscriptions, autovacuum_workers, server_now (epoch seconds).
extern const char* const kActivitySql;

// Databases Neon leaves out of its pg_stat_database sums.
bool NeonExcludedDatabase(std::string_view datname);

struct ActivitySample {
  long long other_sessions = 0;
  long long other_active = 0;
  double other_last_change = 0;  // epoch seconds
  long long sessions_total = 0;
  double active_time_ms = 0;
  long long walsenders = 0;
  long long subscriptions = 0;
  long long autovacuum_workers = 0;
  double server_now = 0;
};

// pgvigil's own use of the counted databases, cumulative, read when the sample was taken.
struct OwnUsage {
  std::uint64_t connects = 0;  // connections opened to a counted database
  double exec_ms = 0;          // client-side statement time on such connections
};

// Parses the single row of kActivitySql given as text cells in column order. nullopt (and
// `error` set) when the shape or a number is wrong.
std::optional<ActivitySample> ParseActivityRow(const std::vector<std::string>& cells,
                                               std::string* error = nullptr);

struct ActivityVerdict {
  bool foreign = false;
  bool keeps_awake = false;  // walsender/subscription/autovacuum: Neon will not suspend now
  std::string reason;        // what was seen ("2 other sessions active", ...) or "" when nothing
};

class ActivityTracker {
 public:
  // use_session_counter: false through a pooler (see above).
  explicit ActivityTracker(bool use_session_counter = true);
  ActivityVerdict Observe(const ActivitySample& sample, const OwnUsage& own);
  // Forget the baseline (after the pool was closed and the compute may have restarted: the
  // counters reset on a Neon suspend).
  void Reset();

  // How long a (server - own) active_time level stays the baseline: longer than PostgreSQL's
  // lazy statistics flush (PGSTAT_IDLE_INTERVAL, 10 s).
  static constexpr double kActiveWindowSeconds = 15;
  // Rounding allowance on active_time (milliseconds, summed from microseconds).
  static constexpr double kActiveSlackMs = 0.5;

 private:
  bool use_session_counter_;
  bool have_baseline_ = false;
  double last_change_seen_ = 0;
  // High-water mark of sessions_total - own connects (see the header comment).
  long long foreign_sessions_mark_ = 0;
  // (server_now, active_time_ms - own exec_ms) of recent looks, oldest first; bounded.
  std::deque<std::pair<double, double>> active_levels_;
};

// Runs kActivitySql on `conn` (within `deadline`) and feeds `tracker`. An error is a DbError
// (the query failed) or a kProtocol error when the row has the wrong shape.
DbResult<ActivityVerdict> ProbeActivity(Connection& conn, const std::string& application_name,
                                        ActivityTracker& tracker, const OwnUsage& own,
                                        SteadyTime deadline);

}  // namespace pgvigil
