#pragma once
// StatsVisibility: whether pgvigil's role sees other roles' sessions and statements. Without
// pg_read_all_stats (granted through pg_monitor) or superuser, pg_stat_activity shows
// "<insufficient privilege>" for their queries and pg_stat_statements hides their texts, so the
// samplers would miss them silently. Read on each activity run, as two columns of the activity
// sampler's own statement (StatsVisibilityColumns; no statement of its own); reported in the
// "sampling" section of /health (with the GRANT that fixes it) and as
// pgvigil_sampling_full_visibility (1/0, absent until known).
// Not thread-safe: Record belongs to the scheduler thread; ToJson's value may be published.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pgvigil {

class StatsVisibility {
 public:
  explicit StatsVisibility(prometheus::Registry& registry);

  // The role's privileges as the activity statement read them (a failed run reports nothing, so
  // the last answer stays).
  void Record(std::string role, bool full);

  std::optional<bool> full() const { return full_; }
  // {"all_sessions": bool, "role": "...", "hint": "..."} (hint only when partial), or null.
  nlohmann::json ToJson() const;

 private:
  prometheus::Family<prometheus::Gauge>& family_;
  prometheus::Gauge* gauge_ = nullptr;  // added once known
  std::optional<bool> full_;
  std::string role_;
};

// A one-row SELECT of current_user (visibility_role) and whether it has the privileges of
// pg_read_all_stats (visibility_full), for the activity statement to join.
std::string StatsVisibilityColumns();

}  // namespace pgvigil
