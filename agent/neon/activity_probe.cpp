#include "neon/activity_probe.hpp"

#include <charconv>
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
)
SELECT
  (SELECT count(*) FROM others) AS other_sessions,
  (SELECT count(*) FROM others WHERE state IS NOT NULL AND state <> 'idle') AS other_active,
  (SELECT coalesce(extract(epoch FROM max(greatest(state_change, backend_start))), 0)
     FROM others) AS other_last_change,
  (SELECT coalesce(sum(sessions), 0) FROM pg_stat_database) AS sessions_total,
  (SELECT coalesce(sum(xact_commit + xact_rollback), 0) FROM pg_stat_database
     WHERE datname = current_database()) AS xact_total,
  extract(epoch FROM clock_timestamp()) AS server_now
)SQL";

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
  if (cells.size() != 6) {
    return fail("activity query returned " + std::to_string(cells.size()) + " columns, expected 6");
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
      {"xact_total", ToLong(cells[4], s.xact_total)},
      {"server_now", ToDouble(cells[5], s.server_now)},
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
}

ActivityVerdict ActivityTracker::Observe(const ActivitySample& s, std::uint64_t own_connects) {
  ActivityVerdict v;
  long long foreign_sessions = s.sessions_total - static_cast<long long>(own_connects);
  if (s.other_active > 0) {
    v.foreign = true;
    v.reason = std::to_string(s.other_active) + " other session(s) running queries";
  } else if (have_baseline_ && s.other_last_change > last_change_seen_) {
    v.foreign = true;
    v.reason = "another session ran a query since the last look";
  } else if (have_baseline_ && use_session_counter_ && foreign_sessions > foreign_sessions_mark_) {
    v.foreign = true;
    v.reason = std::to_string(foreign_sessions - foreign_sessions_mark_) +
               " other session(s) connected since the last look";
  }
  if (!have_baseline_ || s.other_last_change > last_change_seen_) {
    last_change_seen_ = s.other_last_change;
  }
  if (!have_baseline_ || foreign_sessions > foreign_sessions_mark_) {
    foreign_sessions_mark_ = foreign_sessions;
  }
  have_baseline_ = true;
  return v;
}

DbResult<ActivityVerdict> ProbeActivity(Connection& conn, const std::string& application_name,
                                        ActivityTracker& tracker, std::uint64_t own_connects_total,
                                        SteadyTime deadline) {
  DbResult<ActivityVerdict> out;
  auto r = conn.Exec(kActivitySql, {application_name}, deadline);
  if (!r.ok()) {
    out.error = r.error;
    return out;
  }
  std::vector<std::string> cells;
  if (r.value->Rows() == 1) {
    for (int c = 0; c < r.value->Columns(); ++c) cells.push_back(r.value->Text(0, c));
  }
  std::string error;
  auto sample = ParseActivityRow(cells, &error);
  if (!sample) {
    out.error = DbError{ErrorKind::kProtocol, "", error};
    return out;
  }
  out.value = tracker.Observe(*sample, own_connects_total);
  return out;
}

}  // namespace pgvigil
