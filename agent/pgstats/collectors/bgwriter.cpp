// stat_bgwriter: pg_stat_bgwriter_*_total counters (PG < 17: checkpoint columns included;
// PG >= 17: bgwriter columns only, plus pg_stat_checkpointer_*_total). They show the server's
// values and follow its resets (CumulativeCounter kFollowSource).
#include <iterator>
#include <map>
#include <utility>

#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

struct BgColumn {
  const char* column;  // SQL expression
  const char* metric;
  const char* help;
};

const BgColumn kBgwriterBefore17[] = {
    {"checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed_total",
     "Number of scheduled checkpoints that have been performed"},
    {"checkpoints_req", "pg_stat_bgwriter_checkpoints_req_total",
     "Number of requested checkpoints that have been performed"},
    {"checkpoint_write_time", "pg_stat_bgwriter_checkpoint_write_time_total",
     "Time spent writing files to disk during checkpoints, in milliseconds"},
    {"checkpoint_sync_time", "pg_stat_bgwriter_checkpoint_sync_time_total",
     "Time spent synchronizing files to disk during checkpoints, in milliseconds"},
    {"buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint_total",
     "Number of buffers written during checkpoints"},
    {"buffers_clean", "pg_stat_bgwriter_buffers_clean_total",
     "Number of buffers written by the background writer"},
    {"maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total",
     "Number of times the background writer stopped a cleaning scan because it had written too "
     "many buffers"},
    {"buffers_backend", "pg_stat_bgwriter_buffers_backend_total",
     "Number of buffers written directly by a backend"},
    {"buffers_backend_fsync", "pg_stat_bgwriter_buffers_backend_fsync_total",
     "Number of times a backend had to execute its own fsync call"},
    {"buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"},
    {"extract(epoch FROM stats_reset)::float8", "pg_stat_bgwriter_stats_reset_total",
     "Time at which these statistics were last reset"},
};

const BgColumn kBgwriter17[] = {
    {"b.buffers_clean", "pg_stat_bgwriter_buffers_clean_total",
     "Number of buffers written by the background writer"},
    {"b.maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total",
     "Number of times the background writer stopped a cleaning scan because it had written too "
     "many buffers"},
    {"b.buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"},
    {"extract(epoch FROM b.stats_reset)::float8", "pg_stat_bgwriter_stats_reset_total",
     "Time at which these statistics were last reset"},
    {"c.num_timed", "pg_stat_checkpointer_num_timed_total",
     "Number of scheduled checkpoints due to timeout"},
    {"c.num_requested", "pg_stat_checkpointer_num_requested_total",
     "Number of requested checkpoints that have been performed"},
    {"c.restartpoints_timed", "pg_stat_checkpointer_restartpoints_timed_total",
     "Number of scheduled restartpoints due to timeout or after a failed attempt to perform it"},
    {"c.restartpoints_req", "pg_stat_checkpointer_restartpoints_req_total",
     "Number of requested restartpoints"},
    {"c.restartpoints_done", "pg_stat_checkpointer_restartpoints_done_total",
     "Number of restartpoints that have been performed"},
    {"c.write_time", "pg_stat_checkpointer_write_time_total",
     "Time spent writing files to disk during checkpoints and restartpoints, in milliseconds"},
    {"c.sync_time", "pg_stat_checkpointer_sync_time_total",
     "Time spent synchronizing files to disk during checkpoints and restartpoints, in "
     "milliseconds"},
    {"c.buffers_written", "pg_stat_checkpointer_buffers_written_total",
     "Number of buffers written during checkpoints and restartpoints"},
    {"extract(epoch FROM c.stats_reset)::float8", "pg_stat_checkpointer_stats_reset_total",
     "Time at which these statistics were last reset"},
};

constexpr int kPg17 = 170000;

class BgwriterCollector final : public OneStatementCollector {
 public:
  explicit BgwriterCollector(prometheus::Registry& r) : registry_(r) {}
  const char* name() const override { return "stat_bgwriter"; }
  void Forget() override {
    for (auto& [name, counter] : counters_) counter.Clear();
  }

 protected:
  // Each column is named after its metric: distinct, as the bundle needs.
  std::string Sql(const Connection& conn) const override {
    pg17_ = conn.server_version() >= kPg17;
    std::string sql = "/* pgvigil */ SELECT ";
    const auto [cols, n] = Columns();
    for (size_t i = 0; i < n; ++i) {
      sql += std::string(i ? ", " : "") + cols[i].column + " AS " + cols[i].metric;
    }
    sql +=
        pg17_ ? " FROM pg_stat_bgwriter AS b, pg_stat_checkpointer AS c" : " FROM pg_stat_bgwriter";
    return sql;
  }
  void Read(const RowSet& r) override {
    if (r.Rows() < 1) return;
    const auto [cols, n] = Columns();
    for (size_t i = 0; i < n; ++i) {
      if (r.IsNull(0, static_cast<int>(i))) continue;
      Counter(cols[i]).Observe(CellNumber(r, 0, static_cast<int>(i)));
    }
  }

 private:
  // The columns of the statement Sql gave last.
  std::pair<const BgColumn*, size_t> Columns() const {
    if (pg17_) return {kBgwriter17, std::size(kBgwriter17)};
    return {kBgwriterBefore17, std::size(kBgwriterBefore17)};
  }

  CumulativeCounter& Counter(const BgColumn& c) {
    auto it = counters_.find(c.metric);
    if (it == counters_.end()) {
      it = counters_
               .try_emplace(c.metric, registry_, c.metric, c.help,
                            CumulativeCounter::Presentation::kFollowSource)
               .first;
    }
    return it->second;
  }

  prometheus::Registry& registry_;
  mutable bool pg17_ = false;                          // the server's version as Sql last saw it
  std::map<std::string, CumulativeCounter> counters_;  // by metric name, created on first sight
};

}  // namespace

std::unique_ptr<Collector> MakeBgwriterCollector(prometheus::Registry& r) {
  return std::make_unique<BgwriterCollector>(r);
}

}  // namespace pgvigil
