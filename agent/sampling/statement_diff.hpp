#pragma once
// StatementDiffer: turns successive pg_stat_statements counter snapshots into per-interval deltas
// that are never negative or inflated. Within one incarnation of the statistics (same epoch):
//  - a key seen before contributes the growth of its counters;
//  - a key not seen before was created after the previous sample (a new statement, or one that
//    pg_stat_statements evicted and re-created), so all its counters are its delta — unless its
//    stats_since (PG >= 17) is older than the previous sample, then it only sets a baseline;
//  - a key whose stats_since changed or whose counters went backwards was reset after the
//    previous sample, so its counters since that reset are its delta.
// When the epoch changes (postmaster restart, pg_stat_statements_info.stats_reset change) every
// key re-baselines: nothing tells which counts predate the reset. Neon empties these statistics on
// every suspend, so resets are routine, not exceptional.
// Not thread-safe: owned by the StatementSampler on the scheduler thread.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace pgvigil {

struct StatementKey {
  std::int64_t userid = 0;
  std::int64_t dbid = 0;
  std::int64_t queryid = 0;
  bool toplevel = true;

  bool operator==(const StatementKey&) const = default;
};

struct StatementKeyHash {
  std::size_t operator()(const StatementKey& k) const {
    std::uint64_t h = static_cast<std::uint64_t>(k.queryid) * 0x9E3779B97F4A7C15ULL;
    h ^= static_cast<std::uint64_t>(k.userid) + 0x7F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= static_cast<std::uint64_t>(k.dbid) + 0x165667B1ULL + (h << 6) + (h >> 2);
    return static_cast<std::size_t>(h ^ (k.toplevel ? 1 : 0));
  }
};

struct StatementCounters {
  std::int64_t calls = 0;
  double total_exec_ms = 0;
  std::int64_t rows = 0;
  std::int64_t shared_blks_hit = 0;
  std::int64_t shared_blks_read = 0;
  std::int64_t temp_blks_read = 0;
  std::int64_t temp_blks_written = 0;
  double blk_read_ms = 0;
};

struct StatementRow {
  StatementKey key;
  StatementCounters counters;
  std::string stats_since;  // "" when the extension has no stats_since
  std::string datname;      // display only
  std::string usename;      // display only
};

struct StatementDelta {
  StatementKey key;
  StatementCounters delta;  // calls > 0, every field >= 0
  std::string datname;
  std::string usename;
  double mean_exec_ms() const { return delta.calls > 0 ? delta.total_exec_ms / delta.calls : 0; }
};

// Identifies one incarnation of the statistics; a change in either field restarts all counters.
struct StatsEpoch {
  std::string postmaster_start;  // pg_postmaster_start_time() as epoch text
  std::string stats_reset;       // pg_stat_statements_info.stats_reset as epoch text ("" if none)

  bool operator==(const StatsEpoch&) const = default;
};

struct DiffOutcome {
  std::vector<StatementDelta> deltas;  // only keys whose calls grew
  bool first_sample = false;           // nothing to compare with yet
  bool epoch_changed = false;          // everything re-baselined
  int new_keys = 0;                    // created since the previous sample: counted from zero
  int predating_keys = 0;              // unseen, but stats_since predates the previous sample
  int reset_keys = 0;                  // counters went backwards or stats_since changed
};

class StatementDiffer {
 public:
  // `server_now` is the server's clock (epoch seconds) at this sample, when known; with
  // stats_since it tells a key created since the previous sample from one merely unseen.
  DiffOutcome Apply(const StatsEpoch& epoch, std::vector<StatementRow> rows,
                    std::optional<double> server_now = std::nullopt);
  std::size_t tracked() const { return previous_.size(); }
  void Clear();

 private:
  struct Previous {
    StatementCounters counters;
    std::string stats_since;
    std::uint64_t seen = 0;  // the sample that last reported it
  };
  std::uint64_t sample_ = 0;
  bool have_epoch_ = false;
  StatsEpoch epoch_;
  std::optional<double> previous_server_now_;
  std::unordered_map<StatementKey, Previous, StatementKeyHash> previous_;
};

}  // namespace pgvigil
