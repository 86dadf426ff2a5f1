#pragma once
// ActivitySampler: each activity_interval, lists client backends that are not idle (idle in
// transaction included) whose query or transaction is older than slow_threshold, excluding
// pgvigil's own sessions (its backend, its application_name, `/* pgvigil */` texts). Keeps at
// most one sample per fingerprint per cooldown window in a bounded ring of recent samples and
// sets the long-running gauges. Texts are obfuscated per sampling.query_text and flagged when
// PostgreSQL cut them at track_activity_query_size.
// Not thread-safe: Run and the accessors belong to the scheduler thread; ToJson() output is a
// value the caller may publish to other threads.
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "sampling/query_text.hpp"
#include "sampling/sampling_metrics.hpp"
#include "sampling/statement_sampler.hpp"

namespace pgvigil {

inline constexpr int kMaxActivityRows = 100;        // backends read per sample (longest first)
inline constexpr std::size_t kRecentSamples = 100;  // ring of samples shown in /queries
inline constexpr std::size_t kMaxCooldownEntries = 10'000;

struct LongRunningSample {
  SystemTime sampled_at;
  int pid = 0;
  double duration_seconds = 0;  // max of query and transaction age
  std::optional<double> query_seconds;
  std::optional<double> xact_seconds;
  std::string state;
  std::string wait_event_type;
  std::string wait_event;
  std::string application_name;
  std::string datname;
  std::string usename;
  QueryText text;
  std::optional<Traceparent> traceparent;  // from a sqlcommenter comment in the raw text
  bool truncated_by_server = false;        // the server cut it at track_activity_query_size
};

class ActivitySampler {
 public:
  // `own_application_name`: sessions with this application_name are pgvigil's and skipped.
  ActivitySampler(const SamplingSettings& settings, SamplingMetrics& metrics,
                  std::string own_application_name = "pgvigil");

  SamplerRunResult Run(Connection& conn, SteadyTime deadline, SystemTime now);

  nlohmann::json ToJson() const;      // "activity" section of /queries
  nlohmann::json StatusJson() const;  // short form for /health

  CollectorStatus status() const { return status_; }
  const std::deque<LongRunningSample>& recent() const { return recent_; }  // newest first
  int long_running_now() const { return long_running_now_; }
  // The role and whether it sees every role's sessions (StatsVisibility), as the last successful
  // run read them in its own statement; nullopt before.
  const std::optional<std::pair<std::string, bool>>& visibility() const { return visibility_; }
  double max_seconds_now() const { return max_seconds_now_; }

 private:
  SamplingSettings settings_;
  SamplingMetrics& metrics_;
  std::string own_application_name_;
  std::deque<LongRunningSample> recent_;
  std::unordered_map<std::string, SystemTime> last_sampled_;  // fingerprint -> time
  CollectorStatus status_ = CollectorStatus::kPending;
  std::string message_;
  std::optional<SystemTime> last_run_;
  std::optional<SystemTime> last_success_;
  int long_running_now_ = 0;
  double max_seconds_now_ = 0;
  std::optional<std::pair<std::string, bool>> visibility_;
};

// SQL of the activity sample: $1 own application_name, $2 threshold seconds, $3 row limit,
// $4 max characters of text. Its columns 14 and 15 are the statistics visibility
// (StatsVisibilityColumns), in every row; with no backend to report, one row whose backend
// columns are NULL.
std::string ActivitySql();

}  // namespace pgvigil
