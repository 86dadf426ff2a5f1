#pragma once
// StatsVisibility: whether pgvigil's role sees other roles' sessions and statements. Without
// pg_read_all_stats (granted through pg_monitor) or superuser, pg_stat_activity shows
// "<insufficient privilege>" for their queries and pg_stat_statements hides their texts, so the
// samplers would miss them silently. Checked with one trivial statement on each activity run;
// reported in the "sampling" section of /health (with the GRANT that fixes it) and as
// pgvigil_sampling_full_visibility (1/0, absent until known).
// Not thread-safe: Check belongs to the scheduler thread; ToJson's value may be published.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "db/connection.hpp"

namespace pgvigil {

class StatsVisibility {
 public:
  explicit StatsVisibility(prometheus::Registry& registry);

  // Re-reads the role's privileges; a failed check keeps the last answer.
  void Check(Connection& conn, SteadyTime deadline);

  std::optional<bool> full() const { return full_; }
  // {"all_sessions": bool, "role": "...", "hint": "..."} (hint only when partial), or null.
  nlohmann::json ToJson() const;

 private:
  prometheus::Family<prometheus::Gauge>& family_;
  prometheus::Gauge* gauge_ = nullptr;  // added once known
  std::optional<bool> full_;
  std::string role_;
};

// The statement: current_user, and whether it has the privileges of pg_read_all_stats.
std::string StatsVisibilitySql();

}  // namespace pgvigil
