#include "sampling/stats_visibility.hpp"

#include "util/utf8.hpp"

namespace pgvigil {

std::string StatsVisibilitySql() {
  // pg_has_role answers true for superusers too.
  return "/* pgvigil */ SELECT current_user::text, "
         "pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')";
}

StatsVisibility::StatsVisibility(prometheus::Registry& registry)
    : family_(prometheus::BuildGauge()
                  .Name("pgvigil_sampling_full_visibility")
                  .Help("1 when pgvigil's role sees every role's sessions and statements "
                        "(pg_monitor / pg_read_all_stats or superuser), 0 when other roles' "
                        "queries are hidden from sampling")
                  .Register(registry)) {}

void StatsVisibility::Check(Connection& conn, SteadyTime deadline) {
  auto r = conn.Exec(StatsVisibilitySql(), deadline);
  if (!r || r->Rows() != 1) return;
  role_ = SanitizeUtf8(r->Text(0, 0));
  full_ = r->Text(0, 1) == "t";
  if (gauge_ == nullptr) gauge_ = &family_.Add({});
  gauge_->Set(*full_ ? 1 : 0);
}

nlohmann::json StatsVisibility::ToJson() const {
  if (!full_) return nullptr;
  nlohmann::json j;
  j["all_sessions"] = *full_;
  j["role"] = role_;
  if (!*full_) {
    j["hint"] = "role \"" + role_ +
                "\" cannot see other roles' queries in pg_stat_activity and pg_stat_statements, "
                "so their slow queries are not sampled; run GRANT pg_monitor TO \"" +
                role_ + "\" (or pg_read_all_stats)";
  }
  return j;
}

}  // namespace pgvigil
