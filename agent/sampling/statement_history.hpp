#pragma once
// StatementHistory: a bounded ring of recent statement windows (one per pg_stat_statements sample:
// every statement whose calls grew, with its deltas), kept for sampling.history and capped at
// kMaxHistoryEntries statement rows in all, so /queries can answer "the last 15 minutes", not
// only the last window. Windows are immutable once added and shared by pointer, so Snapshot() is
// cheap and the HTTP threads aggregate a snapshot without any lock or database access.
// StatementHistory is not thread-safe (the scheduler thread owns it); a HistorySnapshot is
// immutable and may be read from any thread. The free functions are pure and thread-safe.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/duration.hpp"
#include "config/settings.hpp"
#include "sampling/query_text.hpp"
#include "sampling/statement_diff.hpp"

namespace pgvigil {

using SystemTime = std::chrono::system_clock::time_point;

// Hard cap on statement rows over all windows: 5,000 statements active in each of 60 windows
// (1 h at 1-minute samples), about 25-34 MiB (bench/history_ring.sh); beyond the cap the oldest
// windows go first and /queries says history_capped.
inline constexpr std::size_t kMaxHistoryEntries = 300'000;

// Who a statement is; shared by every window that saw it. Immutable.
struct StatementIdentity {
  StatementKey key;
  std::string datname;
  std::string usename;
  std::optional<QueryText> text;  // nullopt until its text was read
};

struct WindowStatement {
  std::shared_ptr<const StatementIdentity> who;
  StatementCounters delta;  // calls > 0
};

// One sample's window: from the previous sample to this one.
struct HistoryWindow {
  SystemTime start;
  SystemTime end;
  std::int64_t evictions = 0;  // growth of pg_stat_statements_info.dealloc during the window
  int new_statements = 0;      // counted from zero (created since the previous sample)
  std::vector<WindowStatement> statements;
};

struct HistorySnapshot {
  std::vector<std::shared_ptr<const HistoryWindow>> windows;  // oldest first
  Millis retention{0};
  bool capped = false;  // windows younger than retention were dropped to respect the cap
};

class StatementHistory {
 public:
  explicit StatementHistory(Millis retention, std::size_t max_entries = kMaxHistoryEntries);

  // Appends a window and drops what is older than retention before its end, or over the cap.
  void Add(HistoryWindow window);
  void Clear();
  std::shared_ptr<const HistorySnapshot> Snapshot() const;

  std::size_t windows() const { return windows_.size(); }
  std::size_t entries() const { return entries_; }
  // Heap bytes held by the windows and the identities they share (estimate from sizes and
  // capacities; the bench measures the real figure).
  std::size_t ApproxBytes() const;

 private:
  Millis retention_;
  std::size_t max_entries_;
  std::deque<std::shared_ptr<const HistoryWindow>> windows_;
  std::size_t entries_ = 0;
  bool capped_ = false;
};

enum class QueriesSort { kTime, kCalls, kMean, kRows };
const char* QueriesSortName(QueriesSort s);  // time|calls|mean|rows

// GET /queries parameters: window=15m (a duration), since=<RFC 3339 or Unix seconds> (overrides
// window), limit=1..1000, sort=time|calls|mean|rows.
struct QueriesRequest {
  Millis window{15 * 60 * 1000};
  std::optional<SystemTime> since;
  int limit = 20;
  QueriesSort sort = QueriesSort::kTime;
};

inline constexpr int kMaxQueriesLimit = 1000;

// Parses the query string. nullopt and `error` (one line naming the parameter, the value and what
// is allowed) on bad input; unknown parameters are errors too. `retention` bounds window/since.
std::optional<QueriesRequest> ParseQueriesRequest(
    const std::multimap<std::string, std::string>& params, int default_limit, Millis retention,
    SystemTime now, std::string* error);

// "2026-01-02T03:04:05Z", "...05.123Z", "...05+02:00" or Unix seconds ("1767323045.5").
std::optional<SystemTime> ParseTimestamp(const std::string& text);

// The aggregate over the windows that ended after the request's start (now - window, or since):
// {"from", "to", "seconds", "windows", "sort", "limit", "history_seconds", "evictions",
//  "complete", "totals": {...}, "statements": [...]}. Each statement: queryid, database, user,
// toplevel, fingerprint, query (unless mode none), calls, total_exec_seconds, mean_exec_seconds,
// rows, shared_blks_hit, shared_blks_read, shared_hit_ratio, temp_blks_read, temp_blks_written,
// blk_read_seconds, first_seen, last_seen.
nlohmann::json AggregateHistory(const HistorySnapshot& history, const QueriesRequest& request,
                                SystemTime now, QueryTextMode mode);

}  // namespace pgvigil
