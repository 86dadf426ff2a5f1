#include <chrono>

#include "sampling/statement_sampler.hpp"
#include "util/time_format.hpp"

// The JSON views of StatementSampler (/health and /queries).
namespace pgvigil {
namespace {

nlohmann::json OptionalTime(const std::optional<SystemTime>& t) {
  return t ? nlohmann::json(FormatRfc3339Utc(*t)) : nlohmann::json(nullptr);
}

nlohmann::json TopJson(const TopStatement& t, QueryTextMode mode) {
  nlohmann::json j;
  j["queryid"] = std::to_string(t.key.queryid);  // 64-bit: a string survives JavaScript
  j["database"] = t.datname;
  j["user"] = t.usename;
  j["toplevel"] = t.key.toplevel;
  if (t.text) {
    j["fingerprint"] = t.text->fingerprint;
    if (mode != QueryTextMode::kNone) {
      j["query"] = t.text->text;
      j["query_truncated"] = t.text->truncated;
    }
  } else {
    j["fingerprint"] = nullptr;
    if (mode != QueryTextMode::kNone) j["query"] = nullptr;
  }
  j["calls"] = t.delta.calls;
  j["total_exec_seconds"] = t.delta.total_exec_ms / 1000.0;
  j["mean_exec_seconds"] = t.mean_exec_ms() / 1000.0;
  j["rows"] = t.delta.rows;
  j["shared_blks_hit"] = t.delta.shared_blks_hit;
  j["shared_blks_read"] = t.delta.shared_blks_read;
  j["temp_blks_read"] = t.delta.temp_blks_read;
  j["temp_blks_written"] = t.delta.temp_blks_written;
  j["blk_read_seconds"] = t.delta.blk_read_ms / 1000.0;
  return j;
}

}  // namespace

const char* CollectorStatusName(CollectorStatus s) {
  switch (s) {
    case CollectorStatus::kPending:
      return "pending";
    case CollectorStatus::kOk:
      return "ok";
    case CollectorStatus::kUnavailable:
      return "unavailable";
    case CollectorStatus::kError:
      return "error";
    case CollectorStatus::kDisabled:
      return "disabled";
  }
  return "error";
}

nlohmann::json StatementSampler::StatusJson() const {
  nlohmann::json j;
  j["status"] = CollectorStatusName(status_);
  if (!message_.empty()) j["message"] = message_;
  j["last_run"] = OptionalTime(last_run_);
  j["last_success"] = OptionalTime(last_success_);
  j["pg_stat_statements_available"] = columns_.has_value();
  return j;
}

nlohmann::json StatementSampler::ToJson() const {
  nlohmann::json j = StatusJson();
  j["interval_seconds"] = std::chrono::duration<double>(settings_.statements_interval).count();
  j["query_text"] = QueryTextModeName(settings_.query_text);
  j["sampled_at"] = OptionalTime(previous_sample_);
  j["window_seconds"] = window_seconds_ ? nlohmann::json(*window_seconds_) : nlohmann::json();
  j["rebaselined"] = rebaselined_;
  // Evictions during the last window: statements created and evicted between two samples are
  // missing from it, and a re-created entry's counts may have started before the window.
  j["window_evictions"] = window_evictions_;
  j["window_complete"] = window_evictions_ == 0;
  j["window_new_statements"] = window_new_statements_;
  j["history"] = {{"windows", history_.windows()},
                  {"statements", history_.entries()},
                  {"approx_bytes", history_bytes_}};
  nlohmann::json pss;
  pss["available"] = columns_.has_value();
  pss["version"] = extversion_.empty() ? nlohmann::json() : nlohmann::json(extversion_);
  pss["entries"] = entries_ ? nlohmann::json(*entries_) : nlohmann::json();
  pss["max"] = max_entries_ ? nlohmann::json(*max_entries_) : nlohmann::json();
  pss["dealloc"] = dealloc_ ? nlohmann::json(*dealloc_) : nlohmann::json();
  j["pg_stat_statements"] = std::move(pss);
  nlohmann::json by_time = nlohmann::json::array(), by_calls = nlohmann::json::array();
  for (const auto& t : top_by_time_) by_time.push_back(TopJson(t, settings_.query_text));
  for (const auto& t : top_by_calls_) by_calls.push_back(TopJson(t, settings_.query_text));
  j["top_by_time"] = std::move(by_time);
  j["top_by_calls"] = std::move(by_calls);
  return j;
}

}  // namespace pgvigil
