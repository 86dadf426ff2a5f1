// neon_lfc: Neon's local file cache, from the neon extension's neon_stat_file_cache view (found
// by search_path, else in any schema; absent = success, no error): pgvigil_neon_lfc_available
// (0/1), pgvigil_neon_lfc_{hits,misses,writes}_total (accumulate across compute restarts:
// CumulativeCounter kAccumulate), pgvigil_neon_lfc_used_chunks, pgvigil_neon_lfc_hit_ratio (0..1,
// since the compute started).
#include "pgstats/collector.hpp"
#include "telemetry/series.hpp"

namespace pgvigil {
namespace {

using Presentation = CumulativeCounter::Presentation;

class NeonLfcCollector final : public Collector {
 public:
  explicit NeonLfcCollector(prometheus::Registry& r)
      : available_(r, "pgvigil_neon_lfc_available",
                   "1 when Neon's neon_stat_file_cache view is readable (the neon extension "
                   "is installed), else 0"),
        used_chunks_(r, "pgvigil_neon_lfc_used_chunks",
                     "Chunks of Neon's local file cache in use (1 MiB each by default)"),
        hit_ratio_(r, "pgvigil_neon_lfc_hit_ratio",
                   "Neon local file cache hits / (hits + misses) since the compute started, "
                   "0..1"),
        hits_(r, "pgvigil_neon_lfc_hits_total",
              "Reads served by Neon's local file cache (survives compute restarts)",
              Presentation::kAccumulate),
        misses_(r, "pgvigil_neon_lfc_misses_total",
                "Reads Neon's local file cache missed, served by the pageserver",
                Presentation::kAccumulate),
        writes_(r, "pgvigil_neon_lfc_writes_total", "Writes into Neon's local file cache",
                Presentation::kAccumulate) {}
  const char* name() const override { return "neon_lfc"; }
  std::optional<DbError> Collect(Connection& conn, SteadyTime deadline) override {
    // The view found last time is read directly (one statement per run); when it went away
    // (undefined_table) it is looked up again in the same run.
    if (!view_.empty()) {
      auto err = Read(conn, deadline);
      if (!err || err->sqlstate != "42P01") return err;
    }
    std::optional<DbError> err =
        CollectorQuery(conn, kLookupSql, {}, deadline, [&](const RowSet& r) { Found(r); });
    if (err || view_.empty()) return err;
    return Read(conn, deadline);
  }
  // In the bundle: this run's one statement, the read of the known view, else the lookup.
  std::optional<std::string> BundleSql(const Connection&) const override {
    return view_.empty() ? std::string(kLookupSql) : ReadSql();
  }
  // A bundled lookup that finds the view reads it at once, alone (once, when it appears).
  std::optional<DbError> Publish(const RowSet& r, Connection& conn, SteadyTime deadline) override {
    if (!view_.empty()) {
      Values(r);
      return std::nullopt;
    }
    Found(r);
    return view_.empty() ? std::nullopt : Read(conn, deadline);
  }
  void Forget() override {
    available_.Clear();
    used_chunks_.Clear();
    hit_ratio_.Clear();
    // The *_total counters keep their totals and baselines (pgvigil's own, restart-proof).
  }

 private:
  // Neon's extension is opt-in (CREATE EXTENSION neon), so the view is usually absent: that is
  // not an error. Looked up every run while absent, as it may be created at any time. The view
  // found by search_path wins, else any schema's.
  static constexpr const char* kLookupSql =
      "/* pgvigil */ SELECT format('%I.%I', n.nspname, c.relname) AS view FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relname = 'neon_stat_file_cache' AND c.relkind IN ('v', 'm', 'r') "
      "ORDER BY c.oid = to_regclass('neon_stat_file_cache')::oid DESC NULLS LAST, "
      "n.nspname LIMIT 1";

  // The lookup's rows: the view, or none (its series go away, available = 0).
  void Found(const RowSet& r) {
    if (r.Rows() > 0) view_ = r.Text(0, 0);
    if (!view_.empty()) return;
    available_.Set({}, 0);
    available_.Sweep();
    used_chunks_.Sweep();  // nothing seen: the series go away
    hit_ratio_.Sweep();
  }
  std::string ReadSql() const {
    // `view_` is quoted by format('%I.%I'), so splicing it is safe.
    return "/* pgvigil */ SELECT file_cache_hits::float8 AS hits, file_cache_misses::float8 AS "
           "misses, file_cache_writes::float8 AS writes, file_cache_used::float8 AS used, "
           "file_cache_hit_ratio::float8 AS hit_ratio FROM " +
           view_ + " LIMIT 1";
  }
  // Reads view_ alone; forgets it on failure (looked up again next time).
  std::optional<DbError> Read(Connection& conn, SteadyTime deadline) {
    auto err = CollectorQuery(conn, ReadSql(), {}, deadline, [&](const RowSet& r) { Values(r); });
    if (err) view_.clear();
    return err;
  }
  void Values(const RowSet& r) {
    available_.Set({}, 1);
    if (r.Rows() > 0) {
      if (!r.IsNull(0, 0)) hits_.Observe(CellNumber(r, 0, 0));
      if (!r.IsNull(0, 1)) misses_.Observe(CellNumber(r, 0, 1));
      if (!r.IsNull(0, 2)) writes_.Observe(CellNumber(r, 0, 2));
      if (!r.IsNull(0, 3)) used_chunks_.Set({}, CellNumber(r, 0, 3));
      // The view gives a percentage, NULL before the first read.
      if (!r.IsNull(0, 4)) hit_ratio_.Set({}, CellNumber(r, 0, 4) / 100.0);
    }
    available_.Sweep();
    used_chunks_.Sweep();
    hit_ratio_.Sweep();
  }

  std::string view_;  // schema-qualified and quoted, "" = not found
  SweptGauges available_, used_chunks_, hit_ratio_;
  CumulativeCounter hits_, misses_, writes_;
};

}  // namespace

std::unique_ptr<Collector> MakeNeonLfcCollector(prometheus::Registry& r) {
  return std::make_unique<NeonLfcCollector>(r);
}

}  // namespace pgvigil
