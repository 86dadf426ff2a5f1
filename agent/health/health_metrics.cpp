#include "health/health_metrics.hpp"

#include "db/pool_metrics.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

namespace {

// SELECT 1 answers in about a millisecond on a healthy server; timeouts sit at seconds.
const prometheus::Histogram::BucketBoundaries kProbeBuckets = {
    .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
// Connects include TLS and, on Neon, cold starts of a suspended compute (several seconds).
const prometheus::Histogram::BucketBoundaries kConnectBuckets = {.005, .01, .025, .05, .1, .25, .5,
                                                                 1,    2.5, 5,    10,  20, 30};

std::string OutcomeOf(const ProbeResult& r) {
  if (r.ok) return "ok";
  return std::string(ErrorKindName(r.error ? r.error->kind : ErrorKind::kUnknown));
}

}  // namespace

HealthMetrics::HealthMetrics(prometheus::Registry& r) {
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
  probes_by_traffic_ =
      &prometheus::BuildCounter()
           .Name("pgvigil_probes_by_traffic_total")
           .Help(
               "Successful probes for which a successful statement of pgvigil's other work in "
               "the same tick stood (no SELECT 1 sent, no latency observed); also counted in "
               "pgvigil_probes_total{outcome=\"ok\"}.")
           .Register(r)
           .Add({});
  for (ErrorKind k : kCommonErrorKinds) probes_->Add({{"outcome", std::string(ErrorKindName(k))}});
  connect_duration_ = &prometheus::BuildHistogram()
                           .Name("pgvigil_connect_duration_seconds")
                           .Help(
                               "Duration of successful connects to the database, TLS and "
                               "compute wake-up included.")
                           .Register(r)
                           .Add({}, kConnectBuckets);
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
}

void HealthMetrics::RecordProbe(const ProbeResult& r) {
  pg_up_->Set(r.ok ? 1 : 0);
  probes_->Add({{"outcome", OutcomeOf(r)}}).Increment();
  if (r.ok && r.by_traffic) probes_by_traffic_->Increment();
  if (r.ok && !r.by_traffic) {
    probe_duration_->Observe(std::chrono::duration<double>(r.latency).count());
  }
  if (r.new_connection && r.connect_duration.count() > 0) {
    connect_duration_->Observe(std::chrono::duration<double>(r.connect_duration).count());
  }
  if (r.at.time_since_epoch().count() != 0) {
    last_probe_ts_->Set(ToUnixSeconds(r.at));
    if (r.ok) last_success_ts_->Set(ToUnixSeconds(r.at));
  }
}

void HealthMetrics::SetState(DbState s, bool changed) {
  for (auto& [state, gauge] : state_) gauge->Set(state == s ? 1 : 0);
  if (changed) state_changes_->Increment();
}

}  // namespace pgvigil
