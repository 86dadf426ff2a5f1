#include "neon/activity_probe.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace pgvigil {

const char* const kActivitySql = R"SQL(
WITH others AS (
  SELECT state, state_change, backend_start
  FROM pg_stat_activity
  WHERE backend_type = 'client backend'
    AND pid <> pg_backend_pid()
    AND coalesce(application_name, '') <> $1
    AND coalesce(usename, '') <> 'cloud_admin'
), counted AS (
  SELECT coalesce(sum(sessions), 0) AS sessions,
         coalesce(sum(active_time), 0)::float8 AS active_time
  FROM pg_stat_database
  WHERE datname NOT IN ('postgres', 'template0', 'template1')
)
SELECT
  (SELECT count(*) FROM others) AS other_sessions,
  (SELECT count(*) FROM others WHERE state IS NOT NULL AND state <> 'idle') AS other_active,
  (SELECT coalesce(extract(epoch FROM max(greatest(state_change, backend_start))), 0)
     FROM others) AS other_last_change,
  (SELECT sessions FROM counted) AS sessions_total,
  (SELECT active_time FROM counted) AS active_time_ms,
  (SELECT count(*) FROM pg_stat_replication
     WHERE coalesce(application_name, '') <> 'walproposer') AS walsenders,
  (SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL) AS subscriptions,
  (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'autovacuum worker') AS autovacuum_workers,
  extract(epoch FROM clock_timestamp()) AS server_now
)SQL";

bool NeonExcludedDatabase(std::string_view datname) {
  return datname == "postgres" || datname == "template0" || datname == "template1";
}

namespace {

bool ToLong(const std::string& s, long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ToDouble(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace

std::optional<ActivitySample> ParseActivityRow(const std::vector<std::string>& cells,
                                               std::string* error) {
  auto fail = [error](std::string msg) -> std::optional<ActivitySample> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  if (cells.size() != 9) {
    return fail("activity query returned " + std::to_string(cells.size()) + " columns, expected 9");
  }
  ActivitySample s;
  struct Column {
    const char* name;
    bool ok;
  };
  const Column columns[] = {
      {"other_sessions", ToLong(cells[0], s.other_sessions)},
      {"other_active", ToLong(cells[1], s.other_active)},
      {"other_last_change", ToDouble(cells[2], s.other_last_change)},
      {"sessions_total", ToLong(cells[3], s.sessions_total)},
      {"active_time_ms", ToDouble(cells[4], s.active_time_ms)},
      {"walsenders", ToLong(cells[5], s.walsenders)},
      {"subscriptions", ToLong(cells[6], s.subscriptions)},
      {"autovacuum_workers", ToLong(cells[7], s.autovacuum_workers)},
      {"server_now", ToDouble(cells[8], s.server_now)},
  };
  for (const auto& c : columns) {
    if (!c.ok) return fail(std::string("activity query: column ") + c.name + " is not a number");
  }
  return s;
}

ActivityTracker::ActivityTracker(bool use_session_counter)
    : use_session_counter_(use_session_counter) {}

void ActivityTracker::Reset() {
  have_baseline_ = false;
  last_change_seen_ = 0;
  foreign_sessions_mark_ = 0;
  active_levels_.clear();
}

ActivityVerdict ActivityTracker::Observe(const ActivitySample& s, const OwnUsage& own) {
  ActivityVerdict v;
  const long long foreign_sessions = s.sessions_total - static_cast<long long>(own.connects);
  const double active_level = s.active_time_ms - own.exec_ms;
  while (!active_levels_.empty() &&
         (active_levels_.front().first < s.server_now - kActiveWindowSeconds ||
          active_levels_.size() > 256)) {
    active_levels_.pop_front();
  }
  double active_mark = active_levels_.empty() ? active_level : active_levels_.front().second;
  for (const auto& level : active_levels_) active_mark = std::max(active_mark, level.second);

  auto found = [&v](std::string reason, bool keeps_awake = false) {
    v.foreign = true;
    v.keeps_awake = keeps_awake;
    v.reason = std::move(reason);
  };
  if (s.other_active > 0) {
    found(std::to_string(s.other_active) +
          " other session(s) running queries or idle in transaction");
  } else if (s.walsenders > 0) {
    found(std::to_string(s.walsenders) +
              " walsender(s) (replication) connected: Neon keeps the compute awake",
          true);
  } else if (s.subscriptions > 0) {
    found(std::to_string(s.subscriptions) +
              " logical replication subscription(s) running: Neon keeps the compute awake",
          true);
  } else if (s.autovacuum_workers > 0) {
    found("autovacuum is running: Neon keeps the compute awake", true);
  } else if (have_baseline_ && s.other_last_change > last_change_seen_) {
    found("another session ran a query since the last look");
  } else if (have_baseline_ && use_session_counter_ && foreign_sessions > foreign_sessions_mark_) {
    found(std::to_string(foreign_sessions - foreign_sessions_mark_) +
          " other session(s) connected since the last look");
  } else if (have_baseline_ && !active_levels_.empty() &&
             active_level > active_mark + kActiveSlackMs) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", active_level - active_mark);
    found(std::string("other sessions were active for ") + ms + " ms since the last look");
  }
  if (!have_baseline_ || s.other_last_change > last_change_seen_) {
    last_change_seen_ = s.other_last_change;
  }
  if (!have_baseline_ || foreign_sessions > foreign_sessions_mark_) {
    foreign_sessions_mark_ = foreign_sessions;
  }
  active_levels_.emplace_back(s.server_now, active_level);
  have_baseline_ = true;
  return v;
}

DbResult<ActivityVerdict> ProbeActivity(Connection& conn, const std::string& application_name,
                                        ActivityTracker& tracker, const OwnUsage& own,
                                        SteadyTime deadline) {
  auto r = conn.Exec(kActivitySql, {application_name}, deadline);
  if (!r) return tl::make_unexpected(std::move(r.error()));
  std::vector<std::string> cells;
  if (r->Rows() == 1) {
    for (int c = 0; c < r->Columns(); ++c) cells.push_back(r->Text(0, c));
  }
  std::string error;
  auto sample = ParseActivityRow(cells, &error);
  if (!sample) return tl::make_unexpected(DbError{ErrorKind::kProtocol, "", error});
  return tracker.Observe(*sample, own);
}

}  // namespace pgvigil
