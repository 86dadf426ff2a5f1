#include "sampling/activity_sampler.hpp"

#include <algorithm>

#include "sampling/statement_columns.hpp"
#include "util/time_format.hpp"

namespace pgvigil {
namespace {

nlohmann::json OptionalTime(const std::optional<SystemTime>& t) {
  return t ? nlohmann::json(FormatRfc3339Utc(*t)) : nlohmann::json(nullptr);
}

nlohmann::json OptionalString(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

std::string ActivitySql() {
  // The server cuts texts at track_activity_query_size - 1 bytes, backing off to a character
  // boundary (up to 3 more bytes for multibyte text). current_setting() would say "1kB".
  return std::string(kSamplerTag) +
         " WITH a AS ("
         " SELECT pid, state, wait_event_type, wait_event, application_name, datname, usename,"
         " query, extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_seconds,"
         " extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_seconds"
         " FROM pg_catalog.pg_stat_activity"
         " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
         " AND state IS NOT NULL AND state NOT IN ('idle', 'disabled')"
         " AND coalesce(application_name, '') <> $1"
         " AND coalesce(query, '') NOT LIKE '/* pgvigil */%'"
         "), s AS ("
         " SELECT *, greatest(coalesce(query_seconds, 0), coalesce(xact_seconds, 0)) AS seconds"
         " FROM a)"
         " SELECT pid, state, wait_event_type, wait_event, application_name, datname, usename,"
         " seconds, query_seconds, xact_seconds, left(query, $4::int) AS query,"
         " (octet_length(query) >= t.size - 1 OR"
         " (octet_length(query) <> length(query) AND octet_length(query) >= t.size - 4))"
         " AS truncated,"
         " count(*) OVER () AS total, max(seconds) OVER () AS max_seconds"
         " FROM s, (SELECT setting::int AS size FROM pg_catalog.pg_settings"
         " WHERE name = 'track_activity_query_size') t"
         " WHERE seconds >= $2::float8"
         " ORDER BY seconds DESC LIMIT $3::int";
}

ActivitySampler::ActivitySampler(const SamplingSettings& settings, SamplingMetrics& metrics,
                                 std::string own_application_name)
    : settings_(settings),
      metrics_(metrics),
      own_application_name_(std::move(own_application_name)) {
  if (!settings_.enabled) status_ = CollectorStatus::kDisabled;
}

SamplerRunResult ActivitySampler::Run(Connection& conn, SteadyTime deadline, SystemTime now) {
  const auto started = std::chrono::steady_clock::now();
  SamplerRunResult r;
  last_run_ = now;
  if (!settings_.enabled) {
    r.status = status_ = CollectorStatus::kDisabled;
    return r;
  }
  const double threshold = std::chrono::duration<double>(settings_.slow_threshold).count();
  const long long max_chars =
      std::clamp<long long>(static_cast<long long>(settings_.max_query_length) * 8, 1024, 1 << 20);
  auto res = conn.Exec(ActivitySql(),
                       {own_application_name_, std::to_string(threshold),
                        std::to_string(kMaxActivityRows), std::to_string(max_chars)},
                       deadline);
  r.took = std::chrono::steady_clock::now() - started;
  if (!res) {
    r.status = status_ = CollectorStatus::kError;
    r.message = message_ = "reading pg_stat_activity failed: " + res.error().message;
    r.error = res.error();
    metrics_.activity_collector().RecordFailure(r.took);
    return r;
  }
  const QueryResult& q = *res;
  long_running_now_ = q.Rows() > 0 ? static_cast<int>(q.Int(0, 12).value_or(q.Rows())) : 0;
  max_seconds_now_ = q.Rows() > 0 ? q.Double(0, 13).value_or(0) : 0;
  metrics_.SetLongRunning(long_running_now_, max_seconds_now_);

  // Forget fingerprints whose cool-down ended, and bound the map whatever happens.
  for (auto it = last_sampled_.begin(); it != last_sampled_.end();) {
    if (now - it->second >= settings_.cooldown || now < it->second) {
      it = last_sampled_.erase(it);
    } else {
      ++it;
    }
  }
  const auto max_len = static_cast<std::size_t>(settings_.max_query_length);
  std::vector<LongRunningSample> fresh;
  for (int i = 0; i < q.Rows(); ++i) {
    LongRunningSample s;
    s.sampled_at = now;
    s.pid = static_cast<int>(q.Int(i, 0).value_or(0));
    s.state = q.Text(i, 1);
    s.wait_event_type = q.Text(i, 2);
    s.wait_event = q.Text(i, 3);
    s.application_name = SanitizeUtf8(q.Text(i, 4));
    s.datname = SanitizeUtf8(q.Text(i, 5));
    s.usename = SanitizeUtf8(q.Text(i, 6));
    s.duration_seconds = q.Double(i, 7).value_or(0);
    s.query_seconds = q.Double(i, 8);
    s.xact_seconds = q.Double(i, 9);
    s.text = PrepareQueryText(q.Text(i, 10), settings_.query_text, max_len);
    s.traceparent = QueryTraceparent(q.Text(i, 10));
    s.truncated_by_server = q.Text(i, 11) == "t";
    auto [it, inserted] = last_sampled_.try_emplace(s.text.fingerprint, now);
    if (!inserted) continue;  // sampled within the cool-down window
    if (last_sampled_.size() > kMaxCooldownEntries) {
      last_sampled_.erase(it);
      continue;
    }
    fresh.push_back(std::move(s));
  }
  // Newest first; within one sample, longest first.
  for (auto it = fresh.rbegin(); it != fresh.rend(); ++it) recent_.push_front(std::move(*it));
  while (recent_.size() > kRecentSamples) recent_.pop_back();

  r.status = status_ = CollectorStatus::kOk;
  message_.clear();
  r.rows = long_running_now_;
  last_success_ = now;
  metrics_.activity_collector().RecordSuccess(r.took, now);
  return r;
}

nlohmann::json ActivitySampler::StatusJson() const {
  nlohmann::json j;
  j["status"] = CollectorStatusName(status_);
  if (!message_.empty()) j["message"] = message_;
  j["last_run"] = OptionalTime(last_run_);
  j["last_success"] = OptionalTime(last_success_);
  return j;
}

nlohmann::json ActivitySampler::ToJson() const {
  nlohmann::json j = StatusJson();
  j["interval_seconds"] = std::chrono::duration<double>(settings_.activity_interval).count();
  j["slow_threshold_seconds"] = std::chrono::duration<double>(settings_.slow_threshold).count();
  j["cooldown_seconds"] = std::chrono::duration<double>(settings_.cooldown).count();
  j["query_text"] = QueryTextModeName(settings_.query_text);
  j["long_running_now"] = long_running_now_;
  j["max_duration_seconds_now"] = max_seconds_now_;
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& s : recent_) {
    nlohmann::json e;
    e["sampled_at"] = FormatRfc3339Utc(s.sampled_at);
    e["pid"] = s.pid;
    e["duration_seconds"] = s.duration_seconds;
    e["query_seconds"] = s.query_seconds ? nlohmann::json(*s.query_seconds) : nlohmann::json();
    e["xact_seconds"] = s.xact_seconds ? nlohmann::json(*s.xact_seconds) : nlohmann::json();
    e["state"] = s.state;
    e["wait_event_type"] = OptionalString(s.wait_event_type);
    e["wait_event"] = OptionalString(s.wait_event);
    e["application_name"] = s.application_name;
    e["database"] = s.datname;
    e["user"] = s.usename;
    e["fingerprint"] = s.text.fingerprint;
    if (settings_.query_text != QueryTextMode::kNone) {
      e["query"] = s.text.text;
      e["query_truncated"] = s.text.truncated || s.truncated_by_server;
    }
    samples.push_back(std::move(e));
  }
  j["samples"] = std::move(samples);
  return j;
}

}  // namespace pgvigil
