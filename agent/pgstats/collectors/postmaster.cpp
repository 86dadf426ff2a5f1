// postmaster: pg_postmaster_start_time_seconds. Changes only when the server restarts.
#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

class PostmasterCollector final : public OneStatementCollector {
 public:
  explicit PostmasterCollector(prometheus::Registry& r)
      : start_(r, "pg_postmaster_start_time_seconds", "Time at which postmaster started") {}
  const char* name() const override { return "postmaster"; }
  std::chrono::milliseconds min_interval() const override { return std::chrono::minutes(5); }
  void Forget() override { start_.Clear(); }

 protected:
  std::string Sql(const Connection&) const override {
    return "/* pgvigil */ SELECT extract(epoch FROM pg_postmaster_start_time())::float8 "
           "AS start_time";
  }
  void Read(const RowSet& r) override {
    if (r.Rows() < 1) return;
    start_.Set({}, CellNumber(r, 0, 0));
    start_.Sweep();
  }

 private:
  SweptGauges start_;
};

}  // namespace

std::unique_ptr<Collector> MakePostmasterCollector(prometheus::Registry& r) {
  return std::make_unique<PostmasterCollector>(r);
}

}  // namespace pgvigil
