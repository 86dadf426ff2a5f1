#include "telemetry/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "telemetry/process_metrics.hpp"
#include "util/time_format.hpp"
#include "util/utf8.hpp"

namespace pgvigil {

namespace {

// SELECT 1 answers in about a millisecond on a healthy server; timeouts sit at seconds.
const prometheus::Histogram::BucketBoundaries kProbeBuckets = {
    .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
// Connects include TLS and, on Neon, cold starts of a suspended compute (several seconds).
const prometheus::Histogram::BucketBoundaries kConnectBuckets = {.005, .01, .025, .05, .1, .25, .5,
                                                                 1,    2.5, 5,    10,  20, 30};

// Created up front so rate() and increase() see a zero before the first event.
constexpr ErrorKind kCommonErrors[] = {ErrorKind::kTimeout,
                                       ErrorKind::kRefused,
                                       ErrorKind::kReset,
                                       ErrorKind::kDns,
                                       ErrorKind::kTls,
                                       ErrorKind::kAuth,
                                       ErrorKind::kTooManyConnections,
                                       ErrorKind::kAdminShutdown,
                                       ErrorKind::kNeonWaking};
constexpr const char* kCloseReasons[] = {"lifetime", "idle", "broken", "shutdown"};

std::string OutcomeOf(const ProbeResult& r) {
  if (r.ok) return "ok";
  return std::string(ErrorKindName(r.error ? r.error->kind : ErrorKind::kUnknown));
}

// How much a cumulative total grew since `before`. A total that went down means the pool was
// recreated: its whole value is new.
std::uint64_t Growth(std::uint64_t before, std::uint64_t now) {
  return now >= before ? now - before : now;
}

void AdvanceTo(prometheus::Counter& counter, std::uint64_t before, std::uint64_t now) {
  if (const auto delta = Growth(before, now)) counter.Increment(static_cast<double>(delta));
}

// Advances counters in `family` the same way, per label value; a label's series is created
// when it first grows.
void AdvanceBy(prometheus::Family<prometheus::Counter>& family, const char* label,
               const std::map<std::string, std::uint64_t>& before,
               const std::map<std::string, std::uint64_t>& now) {
  for (const auto& [key, value] : now) {
    auto it = before.find(key);
    if (const auto delta = Growth(it == before.end() ? 0 : it->second, value)) {
      family.Add({{label, key}}).Increment(static_cast<double>(delta));
    }
  }
}

}  // namespace

AgentMetrics::AgentMetrics(std::string version)
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  pg_up_ = &prometheus::BuildGauge()
                .Name("pg_up")
                .Help("Whether the last probe of the database succeeded (1) or not (0).")
                .Register(r)
                .Add({});

  auto& state = prometheus::BuildGauge()
                    .Name("pgvigil_db_state")
                    .Help("Database state as seen by pgvigil: 1 for the current state, 0 else.")
                    .Register(r);
  for (DbState s : kAllDbStates) {
    state_[s] = &state.Add({{"state", std::string(DbStateName(s))}});
  }
  state_[DbState::kStarting]->Set(1);

  probe_duration_ = &prometheus::BuildHistogram()
                         .Name("pgvigil_probe_duration_seconds")
                         .Help("Latency of successful probe queries.")
                         .Register(r)
                         .Add({}, kProbeBuckets);
  probes_ = &prometheus::BuildCounter()
                 .Name("pgvigil_probes_total")
                 .Help("Probes run, by outcome: ok or the error kind.")
                 .Register(r);
  probes_->Add({{"outcome", "ok"}});
  for (ErrorKind k : kCommonErrors) probes_->Add({{"outcome", std::string(ErrorKindName(k))}});

  connect_duration_ = &prometheus::BuildHistogram()
                           .Name("pgvigil_connect_duration_seconds")
                           .Help(
                               "Duration of successful connects to the database, TLS and "
                               "compute wake-up included.")
                           .Register(r)
                           .Add({}, kConnectBuckets);

  auto& pool = prometheus::BuildGauge()
                   .Name("pgvigil_pool_connections")
                   .Help("Open connections of pgvigil's own pool, by state.")
                   .Register(r);
  pool_idle_ = &pool.Add({{"state", "idle"}});
  pool_busy_ = &pool.Add({{"state", "busy"}});
  pool_max_ = &prometheus::BuildGauge()
                   .Name("pgvigil_pool_max_connections")
                   .Help("Maximum size of pgvigil's own connection pool.")
                   .Register(r)
                   .Add({});
  pool_opened_ = &prometheus::BuildCounter()
                      .Name("pgvigil_pool_connections_opened_total")
                      .Help("Connections opened by pgvigil's pool.")
                      .Register(r)
                      .Add({});
  pool_closed_ = &prometheus::BuildCounter()
                      .Name("pgvigil_pool_connections_closed_total")
                      .Help("Connections closed by pgvigil's pool, by reason.")
                      .Register(r);
  for (const char* reason : kCloseReasons) pool_closed_->Add({{"reason", reason}});
  pool_connect_errors_ = &prometheus::BuildCounter()
                              .Name("pgvigil_pool_connect_errors_total")
                              .Help("Failed connects of pgvigil's pool, by error kind.")
                              .Register(r);
  for (ErrorKind k : kCommonErrors) {
    pool_connect_errors_->Add({{"reason", std::string(ErrorKindName(k))}});
  }

  sampling_pool_open_ = &prometheus::BuildGauge()
                             .Name("pgvigil_sampling_pool_connections")
                             .Help(
                                 "Open connections of the separate sampling pool "
                                 "(neon.sampling_url).")
                             .Register(r)
                             .Add({});
  sampling_pool_opened_ = &prometheus::BuildCounter()
                               .Name("pgvigil_sampling_pool_connections_opened_total")
                               .Help("Connections opened by the sampling pool (neon.sampling_url).")
                               .Register(r)
                               .Add({});
  sampling_pool_connect_errors_ =
      &prometheus::BuildCounter()
           .Name("pgvigil_sampling_pool_connect_errors_total")
           .Help("Failed connects of the sampling pool (neon.sampling_url), by error kind.")
           .Register(r);

  last_probe_ts_ = &prometheus::BuildGauge()
                        .Name("pgvigil_last_probe_timestamp_seconds")
                        .Help("Unix time at which the last probe finished; 0 before the first.")
                        .Register(r)
                        .Add({});
  last_success_ts_ = &prometheus::BuildGauge()
                          .Name("pgvigil_last_success_timestamp_seconds")
                          .Help("Unix time of the last successful probe; 0 before the first.")
                          .Register(r)
                          .Add({});
  state_changes_ = &prometheus::BuildCounter()
                        .Name("pgvigil_state_changes_total")
                        .Help("Changes of the database state.")
                        .Register(r)
                        .Add({});
  internal_errors_ = &prometheus::BuildCounter()
                          .Name("pgvigil_internal_errors_total")
                          .Help(
                              "Exceptions caught in pgvigil's own threads (a bug, not a database "
                              "failure), by component; the loop goes on. See /health "
                              "internal_errors for the last message.")
                          .Register(r);
  for (const char* c : kInternalComponents) internal_errors_->Add({{"component", c}});
  prometheus::BuildGauge()
      .Name("pgvigil_build_info")
      .Help("pgvigil build information; the value is always 1.")
      .Register(r)
      .Add({{"version", std::move(version)}})
      .Set(1);
}

void AgentMetrics::RecordInternalError(const std::string& component) {
  internal_errors_->Add({{"component", component}}).Increment();
}

void AgentMetrics::RecordProbe(const ProbeResult& r) {
  pg_up_->Set(r.ok ? 1 : 0);
  probes_->Add({{"outcome", OutcomeOf(r)}}).Increment();
  if (r.ok) probe_duration_->Observe(std::chrono::duration<double>(r.latency).count());
  if (r.new_connection && r.connect_duration.count() > 0) {
    connect_duration_->Observe(std::chrono::duration<double>(r.connect_duration).count());
  }
  if (r.at.time_since_epoch().count() != 0) {
    last_probe_ts_->Set(ToUnixSeconds(r.at));
    if (r.ok) last_success_ts_->Set(ToUnixSeconds(r.at));
  }
}

void AgentMetrics::SetState(DbState s, bool changed) {
  for (auto& [state, gauge] : state_) gauge->Set(state == s ? 1 : 0);
  if (changed) state_changes_->Increment();
}

void AgentMetrics::UpdatePool(const PoolStats& s) {
  pool_idle_->Set(s.idle);
  pool_busy_->Set(s.busy);
  pool_max_->Set(s.max_size);
  std::lock_guard lock(pool_mu_);
  AdvanceTo(*pool_opened_, last_pool_.opened_total, s.opened_total);
  AdvanceBy(*pool_closed_, "reason", last_pool_.closed_total, s.closed_total);
  AdvanceBy(*pool_connect_errors_, "reason", last_pool_.connect_errors_total,
            s.connect_errors_total);
  last_pool_ = s;
}

void AgentMetrics::UpdateSamplingPool(const PoolStats& s) {
  sampling_pool_open_->Set(s.open);
  std::lock_guard lock(pool_mu_);
  AdvanceTo(*sampling_pool_opened_, last_sampling_pool_.opened_total, s.opened_total);
  AdvanceBy(*sampling_pool_connect_errors_, "reason", last_sampling_pool_.connect_errors_total,
            s.connect_errors_total);
  last_sampling_pool_ = s;
}

std::string AgentMetrics::Serialize() const {
  auto families = registry_->Collect();
  auto process = CollectProcessMetrics();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  // Label values come from the database (datname, usename, settings): one that is not valid
  // UTF-8 (a name made in a SQL_ASCII database) would make Prometheus reject the whole scrape.
  for (auto& family : families) {
    for (auto& metric : family.metric) {
      for (auto& label : metric.label) {
        if (!IsCleanUtf8(label.value)) label.value = SanitizeUtf8(label.value);
      }
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace pgvigil
