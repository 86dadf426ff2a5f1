#include "db/pool_metrics.hpp"

namespace pgvigil {

namespace {

constexpr const char* kCloseReasons[] = {"lifetime", "idle", "broken", "shutdown"};

// How much a cumulative total grew since `before`. A total that went down means the pool was
// recreated: its whole value is new.
std::uint64_t Growth(std::uint64_t before, std::uint64_t now) {
  return now >= before ? now - before : now;
}

void AdvanceTo(prometheus::Counter& counter, std::uint64_t before, std::uint64_t now) {
  if (const auto delta = Growth(before, now)) counter.Increment(static_cast<double>(delta));
}

// Advances the counters of `family` the same way, per label value; a label's series is created
// when it first grows.
void AdvanceBy(prometheus::Family<prometheus::Counter>& family,
               const std::map<std::string, std::string>& labels, const char* label,
               const std::map<std::string, std::uint64_t>& before,
               const std::map<std::string, std::uint64_t>& now) {
  for (const auto& [key, value] : now) {
    auto it = before.find(key);
    if (const auto delta = Growth(it == before.end() ? 0 : it->second, value)) {
      auto l = labels;
      l[label] = key;
      family.Add(l).Increment(static_cast<double>(delta));
    }
  }
}

}  // namespace

PoolMetrics::PoolMetrics(prometheus::Registry& r)
    : connections_(prometheus::BuildGauge()
                       .Name("pgvigil_pool_connections")
                       .Help("Open connections of pgvigil's own pools, by pool and state.")
                       .Register(r)),
      max_(prometheus::BuildGauge()
               .Name("pgvigil_pool_max_connections")
               .Help("Maximum size of pgvigil's own connection pools, by pool.")
               .Register(r)),
      opened_(prometheus::BuildCounter()
                  .Name("pgvigil_pool_connections_opened_total")
                  .Help("Connections opened by pgvigil's pools, by pool.")
                  .Register(r)),
      closed_(prometheus::BuildCounter()
                  .Name("pgvigil_pool_connections_closed_total")
                  .Help("Connections closed by pgvigil's pools, by pool and reason.")
                  .Register(r)),
      connect_errors_(prometheus::BuildCounter()
                          .Name("pgvigil_pool_connect_errors_total")
                          .Help("Failed connects of pgvigil's pools, by pool and error kind.")
                          .Register(r)) {
  // The main pool's series exist from the start (dashboards and alerts find them at 0).
  connections_.Add({{"pool", "main"}, {"state", "idle"}});
  connections_.Add({{"pool", "main"}, {"state", "busy"}});
  max_.Add({{"pool", "main"}});
  opened_.Add({{"pool", "main"}});
  for (const char* reason : kCloseReasons) closed_.Add({{"pool", "main"}, {"reason", reason}});
  for (ErrorKind k : kCommonErrorKinds) {
    connect_errors_.Add({{"pool", "main"}, {"reason", std::string(ErrorKindName(k))}});
  }
  sampling_open_ = &prometheus::BuildGauge()
                        .Name("pgvigil_sampling_pool_connections")
                        .Help(
                            "Open connections of the separate sampling pool "
                            "(neon.sampling_url).")
                        .Register(r)
                        .Add({});
  sampling_opened_ = &prometheus::BuildCounter()
                          .Name("pgvigil_sampling_pool_connections_opened_total")
                          .Help("Connections opened by the sampling pool (neon.sampling_url).")
                          .Register(r)
                          .Add({});
  sampling_connect_errors_ =
      &prometheus::BuildCounter()
           .Name("pgvigil_sampling_pool_connect_errors_total")
           .Help("Failed connects of the sampling pool (neon.sampling_url), by error kind.")
           .Register(r);
}

void PoolMetrics::Update(const std::string& pool, const PoolStats& s) {
  const std::map<std::string, std::string> labels = {{"pool", pool}};
  connections_.Add({{"pool", pool}, {"state", "idle"}}).Set(s.idle);
  connections_.Add({{"pool", pool}, {"state", "busy"}}).Set(s.busy);
  max_.Add(labels).Set(s.max_size);
  std::lock_guard lock(mu_);
  PoolStats& last = last_[pool];
  AdvanceTo(opened_.Add(labels), last.opened_total, s.opened_total);
  AdvanceBy(closed_, labels, "reason", last.closed_total, s.closed_total);
  AdvanceBy(connect_errors_, labels, "reason", last.connect_errors_total, s.connect_errors_total);
  last = s;
}

void PoolMetrics::UpdateSampling(const PoolStats& s) {
  {
    std::lock_guard lock(mu_);
    const PoolStats& last = last_["sampling"];
    sampling_open_->Set(s.open);
    AdvanceTo(*sampling_opened_, last.opened_total, s.opened_total);
    AdvanceBy(*sampling_connect_errors_, {}, "reason", last.connect_errors_total,
              s.connect_errors_total);
  }
  Update("sampling", s);
}

}  // namespace pgvigil
