#include "sampling/statement_diff.hpp"

#include <cmath>
#include <cstdlib>

namespace pgvigil {
namespace {

// Counters only move forward within one incarnation; anything else is a reset we missed.
bool WentBackwards(const StatementCounters& now, const StatementCounters& before) {
  return now.calls < before.calls || now.total_exec_ms < before.total_exec_ms ||
         now.rows < before.rows || now.shared_blks_hit < before.shared_blks_hit ||
         now.shared_blks_read < before.shared_blks_read ||
         now.temp_blks_read < before.temp_blks_read ||
         now.temp_blks_written < before.temp_blks_written || now.blk_read_ms < before.blk_read_ms ||
         !std::isfinite(now.total_exec_ms) || !std::isfinite(now.blk_read_ms);
}

StatementCounters Minus(const StatementCounters& a, const StatementCounters& b) {
  StatementCounters d;
  d.calls = a.calls - b.calls;
  d.total_exec_ms = a.total_exec_ms - b.total_exec_ms;
  d.rows = a.rows - b.rows;
  d.shared_blks_hit = a.shared_blks_hit - b.shared_blks_hit;
  d.shared_blks_read = a.shared_blks_read - b.shared_blks_read;
  d.temp_blks_read = a.temp_blks_read - b.temp_blks_read;
  d.temp_blks_written = a.temp_blks_written - b.temp_blks_written;
  d.blk_read_ms = a.blk_read_ms - b.blk_read_ms;
  return d;
}

// Counters of an entry that (re)started after the previous sample: all of them are the delta.
bool Usable(const StatementCounters& c) {
  return c.calls > 0 && c.total_exec_ms >= 0 && c.rows >= 0 && c.shared_blks_hit >= 0 &&
         c.shared_blks_read >= 0 && c.temp_blks_read >= 0 && c.temp_blks_written >= 0 &&
         c.blk_read_ms >= 0 && std::isfinite(c.total_exec_ms) && std::isfinite(c.blk_read_ms);
}

std::optional<double> EpochSeconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

void StatementDiffer::Clear() {
  have_epoch_ = false;
  previous_server_now_.reset();
  previous_.clear();
}

DiffOutcome StatementDiffer::Apply(const StatsEpoch& epoch, std::vector<StatementRow> rows,
                                   std::optional<double> server_now) {
  DiffOutcome out;
  out.first_sample = !have_epoch_;
  out.epoch_changed = have_epoch_ && !(epoch == epoch_);
  const bool compare = have_epoch_ && !out.epoch_changed;
  // The baseline is updated in place (no second map at each sample: its memory is reused) and
  // keys this sample did not report are dropped after.
  if (!compare) previous_.clear();
  previous_.reserve(rows.size());
  const std::uint64_t sample = ++sample_;
  for (StatementRow& row : rows) {
    auto [it, inserted] = previous_.try_emplace(row.key);
    Previous& prev = it->second;
    if (!inserted && prev.seen == sample) continue;  // a duplicate key keeps the first row
    if (compare) {
      if (inserted) {
        const auto since = EpochSeconds(row.stats_since);
        if (since && previous_server_now_ && *since < *previous_server_now_) {
          ++out.predating_keys;  // existed at the previous sample, we just did not see it
        } else {
          ++out.new_keys;
          if (Usable(row.counters)) {
            out.deltas.push_back(StatementDelta{row.key, row.counters, row.datname, row.usename});
          }
        }
      } else if (prev.stats_since != row.stats_since ||
                 WentBackwards(row.counters, prev.counters)) {
        ++out.reset_keys;  // reset after the previous sample: every count is newer than it
        if (Usable(row.counters)) {
          out.deltas.push_back(StatementDelta{row.key, row.counters, row.datname, row.usename});
        }
      } else if (row.counters.calls > prev.counters.calls) {
        out.deltas.push_back(
            StatementDelta{row.key, Minus(row.counters, prev.counters), row.datname, row.usename});
      }
    }
    prev.counters = row.counters;
    prev.stats_since = std::move(row.stats_since);
    prev.seen = sample;
  }
  std::erase_if(previous_, [sample](const auto& kv) { return kv.second.seen != sample; });
  previous_server_now_ = server_now;
  epoch_ = epoch;
  have_epoch_ = true;
  return out;
}

}  // namespace pgvigil
