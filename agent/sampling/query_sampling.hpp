#pragma once
// QuerySampling: the slow-query sampling feature as the composition root sees it. Owns the
// metrics, the StatementSampler and the ActivitySampler; the scheduler calls RunStatements every
// statements_interval and RunActivity every activity_interval on a connection it owns (never
// while the database is idle/suspended: the scheduler decides), with a deadline of
// now + sampling.statement_timeout. After each run the JSON sections and the statement history
// snapshot are rebuilt and published.
// Thread-safety: Run* belong to the scheduler thread; QueriesJson()/StatusJson() may be called
// from any thread (they copy what was published under a mutex and aggregate the immutable
// history snapshot outside it: no database access, no scheduler state).
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "sampling/activity_sampler.hpp"
#include "sampling/sampling_metrics.hpp"
#include "sampling/statement_sampler.hpp"
#include "sampling/stats_visibility.hpp"

namespace pgvigil {

class QuerySampling {
 public:
  // `own_application_name` = database.application_name (pgvigil's sessions are not sampled).
  QuerySampling(const SamplingSettings& settings, prometheus::Registry& registry,
                std::string own_application_name = "pgvigil");

  SamplerRunResult RunStatements(Connection& conn, SteadyTime deadline, SystemTime now);
  SamplerRunResult RunActivity(Connection& conn, SteadyTime deadline, SystemTime now);

  // Body of GET /queries: {"generated_at", "enabled", "query_text", "window": {the aggregate over
  // the request's window, see AggregateHistory}, "statements": {status, last window's top lists,
  // ...}, "activity": {...}}. Never throws (a failure becomes {"error": ...}).
  std::string QueriesJson(const QueriesRequest& request, SystemTime now) const;
  std::string QueriesJson() const;  // default request (last 15 minutes, top_n) at the clock's now
  // Parses GET /queries parameters against this configuration (top_n, sampling.history).
  std::optional<QueriesRequest> ParseRequest(const std::multimap<std::string, std::string>& params,
                                             SystemTime now, std::string* error) const;
  // The "sampling" section of /health: {"enabled", "query_text", "statements": {status, ...},
  // "activity": {status, ...}, "visibility": {...}}, and a "hint" while pg_stat_statements is
  // missing or the role cannot see other roles' queries.
  std::string StatusJson() const;
  nlohmann::json Status() const;  // the same as a JSON value (for the snapshot; no re-parse)

  const SamplingSettings& settings() const { return settings_; }
  SamplingMetrics& metrics() { return metrics_; }
  StatementSampler& statements() { return statements_; }
  ActivitySampler& activity() { return activity_; }

 private:
  void Publish(SystemTime now);

  SamplingSettings settings_;
  SamplingMetrics metrics_;
  StatementSampler statements_;
  ActivitySampler activity_;
  StatsVisibility visibility_;
  mutable std::mutex mu_;  // guards the four below
  std::shared_ptr<const nlohmann::json> statements_json_;
  std::shared_ptr<const nlohmann::json> activity_json_;
  std::shared_ptr<const HistorySnapshot> history_;
  nlohmann::json status_;
};

}  // namespace pgvigil
