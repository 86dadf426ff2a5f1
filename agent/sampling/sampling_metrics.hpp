#pragma once
// SamplingMetrics: every metric the samplers export, declared in one place. Cardinality is fixed
// (no queryid labels) except the top-statement gauges, bounded by top_n_labels (default 10, 0 =
// none): a fingerprint's series exist while it is in the last window's top by execution time and
// are removed when it leaves, so at most top_n_labels series of each family exist at once.
//
//   pgvigil_statements_calls_total                    counter  calls summed over all statements
//   pgvigil_statements_exec_seconds_total             counter  execution time, all statements
//   pgvigil_statements_rows_total                     counter  rows, all statements
//     (the three accumulate per-interval deltas, so they survive pg_stat_statements resets)
//   pgvigil_statement_mean_seconds                    histogram mean time per call of each
//                                                      statement that ran in an interval
//   pgvigil_pg_stat_statements_available              gauge    1 when the extension is usable
//   pgvigil_pg_stat_statements_entries / _max         gauges   entries vs pg_stat_statements.max
//   pgvigil_pg_stat_statements_dealloc_total          counter  evictions seen (growth of dealloc)
//   pgvigil_long_running_queries                      gauge    backends over slow_threshold now
//   pgvigil_long_running_max_seconds                  gauge    the longest of them (0 if none)
//   pgvigil_top_statement_exec_seconds{fingerprint}   gauge    exec time in the last
//   pgvigil_top_statement_calls{fingerprint}          gauge    interval of the top statements
//   pgvigil_top_statement_info{fingerprint,query}     gauge    1; query = obfuscated text cut at
//                                                      kTopStatementQueryBytes (for legends)
//   pgvigil_collector_*{collector="statements"|"activity"}  see telemetry/collector_metrics.hpp
//
// Thread-safe for scraping (prometheus-cpp metrics are atomic); the setters are called by the
// scheduler thread only. The registry must outlive it.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <string>
#include <vector>

#include "telemetry/collector_metrics.hpp"

namespace pgvigil {

// Longest query label value of pgvigil_top_statement_info, in bytes (marker included).
inline constexpr std::size_t kTopStatementQueryBytes = 200;

struct TopStatementLabel {
  std::string fingerprint;
  double exec_seconds = 0;
  double calls = 0;
  std::string query;  // obfuscated text ("" when query_text = none); cut here to the bound
};

class SamplingMetrics {
 public:
  SamplingMetrics(prometheus::Registry& registry, int top_n_labels);

  void AddStatementTotals(double calls, double exec_seconds, double rows);
  void ObserveStatementMean(double seconds);
  void SetStatementsAvailable(bool available);
  void SetStatementsEntries(double entries, double max);  // max < 0: unknown
  void AddDealloc(double evictions);
  void SetLongRunning(double count, double max_seconds);
  // Replaces the opt-in labelled series with (at most top_n_labels of) `top`.
  void SetTopStatements(const std::vector<TopStatementLabel>& top);
  // This sidecar stopped sampling (not the stats leader, database down or asleep): the
  // last-window series go (top statements) and the long-running gauges read 0, so no old window
  // is shown as current. The cumulative counters stay and stop growing (dashboards take the max
  // of their rates across sidecars, so each statement counts once).
  void ClearCurrent();

  CollectorMetrics& statements_collector() { return statements_collector_; }
  CollectorMetrics& activity_collector() { return activity_collector_; }

  // Read-backs for tests and /health.
  double calls_total() const { return calls_->Value(); }
  double exec_seconds_total() const { return exec_seconds_->Value(); }
  double rows_total() const { return rows_->Value(); }
  double long_running() const { return long_running_->Value(); }
  double long_running_max_seconds() const { return long_running_max_->Value(); }
  double available() const { return available_->Value(); }
  double dealloc_total() const { return dealloc_->Value(); }
  std::size_t top_label_series() const { return top_exec_series_.size(); }
  std::size_t top_info_series() const { return top_info_series_.size(); }

 private:
  int top_n_labels_;
  prometheus::Counter* calls_;
  prometheus::Counter* exec_seconds_;
  prometheus::Counter* rows_;
  prometheus::Histogram* mean_;
  prometheus::Gauge* available_;
  prometheus::Gauge* entries_;
  prometheus::Gauge* max_;
  prometheus::Counter* dealloc_;
  prometheus::Gauge* long_running_;
  prometheus::Gauge* long_running_max_;
  prometheus::Family<prometheus::Gauge>* top_exec_ = nullptr;
  prometheus::Family<prometheus::Gauge>* top_calls_ = nullptr;
  prometheus::Family<prometheus::Gauge>* top_info_ = nullptr;
  std::map<std::string, prometheus::Gauge*> top_exec_series_;
  std::map<std::string, prometheus::Gauge*> top_calls_series_;
  struct InfoSeries {
    std::string query;
    prometheus::Gauge* gauge = nullptr;
  };
  std::map<std::string, InfoSeries> top_info_series_;
  CollectorMetrics statements_collector_;
  CollectorMetrics activity_collector_;
};

}  // namespace pgvigil
