// static: pg_static{version,short_version} = 1. The version changes only with an upgrade
// (a restart), so it runs rarely.
#include "pgstats/collector.hpp"
#include "pgstats/pg_values.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

class StaticInfoCollector final : public Collector {
 public:
  explicit StaticInfoCollector(prometheus::Registry& r)
      : pg_static_(r, "pg_static", "Version string as reported by postgres") {}
  const char* name() const override { return "static"; }
  std::chrono::milliseconds min_interval() const override { return std::chrono::minutes(10); }
  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) override {
    return CollectorQuery(
        conn, "/* pgvigil */ SELECT version()", {}, deadline, [&](const RowSet& r) {
          if (r.Rows() < 1) return;
          const std::string v = r.Text(0, 0);
          pg_static_.Set({{"version", v}, {"short_version", ShortPgVersion(v)}}, 1);
          pg_static_.Sweep();
        });
  }
  void Forget() override { pg_static_.Clear(); }

 private:
  SweptGauges pg_static_;
};

}  // namespace

std::unique_ptr<Collector> MakeStaticInfoCollector(prometheus::Registry& r) {
  return std::make_unique<StaticInfoCollector>(r);
}

}  // namespace pgvigil
