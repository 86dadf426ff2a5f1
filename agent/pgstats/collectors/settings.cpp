// settings: pg_settings_<name>[_bytes|_seconds] for the settings dashboards use; units are
// converted to bytes/seconds as postgres_exporter does (-1 left as is). Settings change with a
// reload at most, so it runs rarely.
#include <map>

#include "pgstats/collector.hpp"
#include "pgstats/pg_values.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

const char* const kSettings[] = {"max_connections",
                                 "shared_buffers",
                                 "effective_cache_size",
                                 "work_mem",
                                 "maintenance_work_mem",
                                 "max_wal_size",
                                 "random_page_cost",
                                 "seq_page_cost",
                                 "max_worker_processes",
                                 "max_parallel_workers",
                                 "superuser_reserved_connections"};

class SettingsCollector final : public Collector {
 public:
  explicit SettingsCollector(prometheus::Registry& r) : registry_(r) {
    names_ = "{";
    for (const char* s : kSettings) names_ += std::string(names_.size() > 1 ? "," : "") + s;
    names_ += "}";
  }
  const char* name() const override { return "settings"; }
  std::chrono::milliseconds min_interval() const override { return std::chrono::minutes(10); }
  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) override {
    return CollectorQuery(
        conn,
        "/* pgvigil */ SELECT name, setting, COALESCE(unit, ''), vartype, short_desc "
        "FROM pg_settings WHERE name = ANY($1::text[]) AND vartype IN ('integer', 'real')",
        {names_}, deadline, [&](const RowSet& r) {
          for (int row = 0; row < r.Rows(); ++row) {
            auto unit = NormalisePgSettingUnit(r.Text(row, 2));
            auto value = r.Double(row, 1);
            if (!unit || !value) continue;  // a unit postgres_exporter does not know either
            std::string name = "pg_settings_" + r.Text(row, 0);
            std::string help = r.Text(row, 4);
            double v = *value;
            if (!unit->first.empty()) {
              name += "_" + unit->first;
              help += " [Units converted to " + unit->first + ".]";
              if (v != -1) v *= unit->second;  // -1 means "disabled" and stays as is
            }
            auto it = gauges_.find(name);
            if (it == gauges_.end()) it = gauges_.try_emplace(name, registry_, name, help).first;
            it->second.Set({}, v);
            it->second.Sweep();
          }
        });
  }
  void Forget() override {
    for (auto& [name, gauge] : gauges_) gauge.Clear();
  }

 private:
  prometheus::Registry& registry_;
  std::string names_;                          // the text[] parameter
  std::map<std::string, SweptGauges> gauges_;  // by metric name, created on first sight
};

}  // namespace

std::unique_ptr<Collector> MakeSettingsCollector(prometheus::Registry& r) {
  return std::make_unique<SettingsCollector>(r);
}

}  // namespace pgvigil
