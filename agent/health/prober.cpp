#include "health/prober.hpp"

#include <chrono>

namespace pgvigil {

ProbeResult RunProbe(Pool& pool, const ProbeSettings& settings, const std::string& sql) {
  using Clock = std::chrono::steady_clock;
  ProbeResult result;
  const auto started = Clock::now();
  // The connect deadline is the pool's own (connect_timeout); passing time_point::max lets it
  // apply that bound alone.
  auto lease = pool.Acquire(Clock::time_point::max());
  if (!lease.ok()) {
    result.at = std::chrono::system_clock::now();
    result.latency = Clock::now() - started;
    result.error = lease.error;
    return result;
  }
  result.new_connection = lease.value->info().new_connection;
  result.connect_duration = lease.value->info().connect_duration;

  const auto query_start = Clock::now();
  auto res = lease.value->conn().Exec(sql, query_start + settings.timeout);
  result.latency = Clock::now() - query_start;
  result.at = std::chrono::system_clock::now();
  if (res.ok()) {
    result.ok = res.value->Rows() == 1 && res.value->Text(0, 0) == "1";
    if (!result.ok) {
      result.error = DbError{ErrorKind::kProtocol, "", "probe returned an unexpected result"};
    }
  } else {
    result.error = res.error;
  }
  pool.Release(std::move(*lease.value));
  return result;
}

}  // namespace pgvigil
