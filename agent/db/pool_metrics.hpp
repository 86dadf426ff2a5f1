#pragma once
// PoolMetrics: the pool families, one series set per pool (pool="main" for database.url,
// pool="sampling" for neon.sampling_url). Gauges are set and counters advanced by the growth of
// PoolStats' totals since the last Update.
//   pgvigil_pool_connections{pool,state}              gauge   state = idle|busy
//   pgvigil_pool_max_connections{pool}                gauge
//   pgvigil_pool_connections_opened_total{pool}       counter
//   pgvigil_pool_connections_closed_total{pool,reason}  counter lifetime|idle|broken|shutdown|...
//   pgvigil_pool_connect_errors_total{pool,reason}      counter ErrorKindName
// and, kept for existing dashboards, the sampling pool's own families (all 0 without one):
//   pgvigil_sampling_pool_connections, pgvigil_sampling_pool_connections_opened_total,
//   pgvigil_sampling_pool_connect_errors_total{reason}
// Thread-safe (prometheus-cpp metrics are atomic; the last-seen totals are under a mutex).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <string>

#include "db/pool.hpp"

namespace pgvigil {

// Error kinds whose series are created up front (rate() and increase() see a zero first).
inline constexpr ErrorKind kCommonErrorKinds[] = {ErrorKind::kTimeout,
                                                  ErrorKind::kRefused,
                                                  ErrorKind::kReset,
                                                  ErrorKind::kDns,
                                                  ErrorKind::kTls,
                                                  ErrorKind::kAuth,
                                                  ErrorKind::kTooManyConnections,
                                                  ErrorKind::kAdminShutdown,
                                                  ErrorKind::kNeonWaking};

class PoolMetrics {
 public:
  explicit PoolMetrics(prometheus::Registry& registry);
  void UpdateMain(const PoolStats& s) { Update("main", s); }
  void UpdateSampling(const PoolStats& s);

 private:
  void Update(const std::string& pool, const PoolStats& s);
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Family<prometheus::Gauge>& max_;
  prometheus::Family<prometheus::Counter>& opened_;
  prometheus::Family<prometheus::Counter>& closed_;
  prometheus::Family<prometheus::Counter>& connect_errors_;
  prometheus::Gauge* sampling_open_;
  prometheus::Counter* sampling_opened_;
  prometheus::Family<prometheus::Counter>* sampling_connect_errors_;
  std::mutex mu_;  // guards last_
  std::map<std::string, PoolStats> last_;
};

}  // namespace pgvigil
