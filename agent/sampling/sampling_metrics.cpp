#include "sampling/sampling_metrics.hpp"

#include <cmath>

#include "sampling/query_text.hpp"

namespace pgvigil {
namespace {

// Mean statement times span sub-millisecond lookups to minute-long reports.
const prometheus::Histogram::BucketBoundaries kMeanBuckets = {
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,    1,     2.5,    5,     10,   30,    60,   300};

bool Usable(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

SamplingMetrics::SamplingMetrics(prometheus::Registry& r, int top_n_labels)
    : top_n_labels_(top_n_labels > 0 ? top_n_labels : 0),
      statements_collector_(r, "statements"),
      activity_collector_(r, "activity") {
  calls_ = &prometheus::BuildCounter()
                .Name("pgvigil_statements_calls_total")
                .Help(
                    "Statement calls counted by pg_stat_statements, summed over all statements "
                    "(accumulated per-interval deltas; survives statistics resets).")
                .Register(r)
                .Add({});
  exec_seconds_ = &prometheus::BuildCounter()
                       .Name("pgvigil_statements_exec_seconds_total")
                       .Help(
                           "Statement execution time from pg_stat_statements, summed over all "
                           "statements (accumulated per-interval deltas).")
                       .Register(r)
                       .Add({});
  rows_ = &prometheus::BuildCounter()
               .Name("pgvigil_statements_rows_total")
               .Help(
                   "Rows returned or affected, from pg_stat_statements, summed over all "
                   "statements (accumulated per-interval deltas).")
               .Register(r)
               .Add({});
  mean_ = &prometheus::BuildHistogram()
               .Name("pgvigil_statement_mean_seconds")
               .Help(
                   "Mean execution time per call of each statement that ran during a "
                   "sampling interval (one observation per statement and interval).")
               .Register(r)
               .Add({}, kMeanBuckets);
  available_ = &prometheus::BuildGauge()
                    .Name("pgvigil_pg_stat_statements_available")
                    .Help(
                        "1 when pg_stat_statements is installed and readable, 0 otherwise "
                        "(see /health for the fix).")
                    .Register(r)
                    .Add({});
  entries_ = &prometheus::BuildGauge()
                  .Name("pgvigil_pg_stat_statements_entries")
                  .Help("Statements currently tracked by pg_stat_statements.")
                  .Register(r)
                  .Add({});
  max_ = &prometheus::BuildGauge()
              .Name("pgvigil_pg_stat_statements_max")
              .Help("pg_stat_statements.max: entries kept before the least used are evicted.")
              .Register(r)
              .Add({});
  dealloc_ = &prometheus::BuildCounter()
                  .Name("pgvigil_pg_stat_statements_dealloc_total")
                  .Help(
                      "Times pg_stat_statements evicted entries since pgvigil started "
                      "(growth of pg_stat_statements_info.dealloc); evictions make the "
                      "statistics incomplete.")
                  .Register(r)
                  .Add({});
  long_running_ = &prometheus::BuildGauge()
                       .Name("pgvigil_long_running_queries")
                       .Help(
                           "Backends whose query or transaction has run longer than "
                           "sampling.slow_threshold, at the last activity sample.")
                       .Register(r)
                       .Add({});
  long_running_max_ = &prometheus::BuildGauge()
                           .Name("pgvigil_long_running_max_seconds")
                           .Help(
                               "Age of the longest-running query or transaction at the last "
                               "activity sample (0 when none is over the threshold).")
                           .Register(r)
                           .Add({});
  if (top_n_labels_ > 0) {
    top_exec_ = &prometheus::BuildGauge()
                     .Name("pgvigil_top_statement_exec_seconds")
                     .Help(
                         "Execution time in the last sampling interval of the top statements "
                         "(sampling.top_n_labels), by fingerprint of the obfuscated text.")
                     .Register(r);
    top_calls_ = &prometheus::BuildGauge()
                      .Name("pgvigil_top_statement_calls")
                      .Help(
                          "Calls in the last sampling interval of the top statements "
                          "(sampling.top_n_labels), by fingerprint of the obfuscated text.")
                      .Register(r);
    top_info_ = &prometheus::BuildGauge()
                     .Name("pgvigil_top_statement_info")
                     .Help(
                         "1 for each top statement (sampling.top_n_labels): its obfuscated "
                         "text, cut at 200 bytes, for dashboard legends (join on fingerprint).")
                     .Register(r);
  }
}

void SamplingMetrics::AddStatementTotals(double calls, double exec_seconds, double rows) {
  if (Usable(calls)) calls_->Increment(calls);
  if (Usable(exec_seconds)) exec_seconds_->Increment(exec_seconds);
  if (Usable(rows)) rows_->Increment(rows);
}

void SamplingMetrics::ObserveStatementMean(double seconds) {
  if (std::isfinite(seconds) && seconds >= 0) mean_->Observe(seconds);
}

void SamplingMetrics::SetStatementsAvailable(bool available) { available_->Set(available ? 1 : 0); }

void SamplingMetrics::SetStatementsEntries(double entries, double max) {
  entries_->Set(entries);
  if (max >= 0) max_->Set(max);
}

void SamplingMetrics::AddDealloc(double evictions) {
  if (Usable(evictions)) dealloc_->Increment(evictions);
}

void SamplingMetrics::SetLongRunning(double count, double max_seconds) {
  long_running_->Set(count);
  long_running_max_->Set(max_seconds);
}

void SamplingMetrics::ClearCurrent() {
  SetLongRunning(0, 0);
  SetTopStatements({});
}

void SamplingMetrics::SetTopStatements(const std::vector<TopStatementLabel>& top) {
  if (top_n_labels_ == 0) return;
  std::map<std::string, const TopStatementLabel*> wanted;
  for (const auto& t : top) {
    if (static_cast<int>(wanted.size()) >= top_n_labels_) break;
    wanted.emplace(t.fingerprint, &t);
  }
  for (auto it = top_exec_series_.begin(); it != top_exec_series_.end();) {
    if (wanted.count(it->first) == 0) {
      top_exec_->Remove(it->second);
      top_calls_->Remove(top_calls_series_[it->first]);
      top_calls_series_.erase(it->first);
      it = top_exec_series_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = top_info_series_.begin(); it != top_info_series_.end();) {
    if (wanted.count(it->first) == 0) {
      top_info_->Remove(it->second.gauge);
      it = top_info_series_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [fp, t] : wanted) {
    auto& exec = top_exec_series_[fp];
    if (exec == nullptr) exec = &top_exec_->Add({{"fingerprint", fp}});
    auto& calls = top_calls_series_[fp];
    if (calls == nullptr) calls = &top_calls_->Add({{"fingerprint", fp}});
    exec->Set(t->exec_seconds);
    calls->Set(t->calls);
    // Same fingerprint, same obfuscated text; a changed cut (max_query_length) replaces it.
    const std::string query = CapQueryLength(SanitizeUtf8(t->query), kTopStatementQueryBytes);
    auto& info = top_info_series_[fp];
    if (info.gauge != nullptr && info.query != query) {
      top_info_->Remove(info.gauge);
      info.gauge = nullptr;
    }
    if (info.gauge == nullptr) {
      info.query = query;
      info.gauge = &top_info_->Add({{"fingerprint", fp}, {"query", query}});
      info.gauge->Set(1);
    }
  }
}

}  // namespace pgvigil
