#pragma once
// StatementSampler: reads pg_stat_statements counters (no texts) each statements_interval, diffs
// them against the previous sample with reset detection (StatementDiffer), keeps the top N
// statements of the interval by execution time and by calls, appends every statement of the
// window to the bounded StatementHistory (for /queries?window=), fetches texts only for queryids
// it has not seen (bounded LRU) among the window's leaders by time, calls, mean time and rows,
// obfuscates them per sampling.query_text and feeds SamplingMetrics.
// pgvigil's own statements (tagged `/* pgvigil */`) are excluded from the top lists and totals.
// A missing extension is a status ("not installed" + the fix), not an error loop: the sampler
// keeps running and notices when it appears.
// Not thread-safe: Run and the accessors belong to the scheduler thread; ToJson() output is a
// value the caller may publish to other threads.
#include <chrono>
#include <cstdint>
#include <list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "sampling/query_text.hpp"
#include "sampling/sampling_metrics.hpp"
#include "sampling/statement_columns.hpp"
#include "sampling/statement_diff.hpp"
#include "sampling/statement_history.hpp"

namespace pgvigil {

// Status of one collector, shown in /health and /queries.
enum class CollectorStatus { kPending, kOk, kUnavailable, kError, kDisabled };
const char* CollectorStatusName(CollectorStatus s);  // pending|ok|unavailable|error|disabled

// What one Run did. `error` is set for failed runs (kError); `error->ConnectionLost()` tells the
// caller to discard the connection.
struct SamplerRunResult {
  CollectorStatus status = CollectorStatus::kPending;
  std::string message;  // one line, no secrets ("" when ok)
  std::optional<DbError> error;
  std::chrono::duration<double> took{0};
  int rows = 0;  // rows read (statements) or long-running backends found (activity)
};

inline constexpr const char* kPgStatStatementsMissing =
    "pg_stat_statements not installed; run CREATE EXTENSION pg_stat_statements; (and add it to "
    "shared_preload_libraries)";

// One statement of the interval's top lists.
struct TopStatement {
  StatementKey key;
  StatementCounters delta;
  std::string datname;
  std::string usename;
  std::optional<QueryText> text;  // nullopt when the text could not be read
  double mean_exec_ms() const { return delta.calls > 0 ? delta.total_exec_ms / delta.calls : 0; }
};

class StatementSampler {
 public:
  StatementSampler(const SamplingSettings& settings, SamplingMetrics& metrics);

  // One sample. Every query runs with `deadline`; `now` stamps the sample.
  SamplerRunResult Run(Connection& conn, SteadyTime deadline, SystemTime now);

  // The "statements" section of /queries: status, interval, pg_stat_statements bookkeeping and
  // the latest top lists.
  nlohmann::json ToJson() const;
  // The short form for /health.
  nlohmann::json StatusJson() const;

  CollectorStatus status() const { return status_; }
  const std::string& message() const { return message_; }  // why unavailable / what failed
  const std::vector<TopStatement>& top_by_time() const { return top_by_time_; }
  const std::vector<TopStatement>& top_by_calls() const { return top_by_calls_; }
  const std::optional<StatementColumns>& columns() const { return columns_; }
  std::size_t text_cache_size() const { return cache_index_.size(); }
  const StatementHistory& history() const { return history_; }
  std::shared_ptr<const HistorySnapshot> HistorySnapshotNow() const { return history_.Snapshot(); }

  // Test hook: the next `runs` calls of Run throw std::runtime_error before doing anything, as
  // a collector with a bug would. Thread-safe.
  static void ThrowOnNextRunsForTest(int runs);

 private:
  struct CachedText {
    std::int64_t queryid;
    QueryText text;
  };

  SamplerRunResult Sample(Connection& conn, SteadyTime deadline, SystemTime now);
  SamplerRunResult Fail(SamplerRunResult r, const DbError& e);
  std::optional<DbError> Detect(Connection& conn, SteadyTime deadline, bool* installed);
  std::optional<DbError> FetchTexts(Connection& conn, SteadyTime deadline,
                                    const std::vector<std::int64_t>& queryids);
  const QueryText* CachedTextFor(std::int64_t queryid);
  const QueryText* PeekText(std::int64_t queryid) const;  // without touching the LRU order
  std::shared_ptr<const StatementIdentity> IdentityFor(const StatementDelta& d);
  void Remember(std::int64_t queryid, QueryText text);

  SamplingSettings settings_;
  SamplingMetrics& metrics_;
  StatementDiffer differ_;
  std::optional<StatementColumns> columns_;
  std::string extversion_;

  // Query texts by queryid, least recently used at the back.
  std::list<CachedText> cache_;
  std::unordered_map<std::int64_t, std::list<CachedText>::iterator> cache_index_;
  std::unordered_set<std::int64_t> own_queryids_;  // pgvigil's own statements (few, bounded)

  std::optional<std::int64_t> last_dealloc_;
  std::string last_stats_reset_;

  CollectorStatus status_ = CollectorStatus::kPending;
  std::string message_;
  std::optional<SystemTime> last_run_;
  std::optional<SystemTime> last_success_;
  std::optional<SystemTime> previous_sample_;  // for the window length
  std::optional<double> window_seconds_;
  std::optional<std::int64_t> entries_;
  std::optional<std::int64_t> max_entries_;
  std::optional<std::int64_t> dealloc_;
  bool rebaselined_ = false;
  std::int64_t window_evictions_ = 0;  // dealloc growth during the last window
  int window_new_statements_ = 0;      // counted from zero in the last window
  StatementHistory history_;
  std::size_t history_bytes_ = 0;  // history_.ApproxBytes() after the last window
  std::unordered_map<StatementKey, std::shared_ptr<const StatementIdentity>, StatementKeyHash>
      identities_;  // of the statements the history holds
  std::vector<TopStatement> top_by_time_;
  std::vector<TopStatement> top_by_calls_;
};

}  // namespace pgvigil
