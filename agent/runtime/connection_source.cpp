#include "runtime/connection_source.hpp"

#include "neon/neon_target.hpp"
#include "util/log.hpp"

namespace pgvigil {

namespace {
// The sampling pool needs one connection: the jobs run one after the other.
PoolSettings SamplingPoolSettings(PoolSettings p) {
  p.size = 1;
  return p;
}

// Marks the connection broken when `fn` throws: its session is in an unknown state.
void RunGuarded(Connection& conn, const std::function<void(Connection&)>& fn) {
  try {
    fn(conn);
  } catch (...) {
    conn.MarkBroken();
    throw;
  }
}
}  // namespace

ConnectionSource::ConnectionSource(const Settings& settings, const AbortSignal* abort)
    : settings_(settings),
      pool_(settings.pool, NeonConnParams(settings.neon, settings.database.conn),
            settings.database.connect_timeout, {}, abort) {
  if (settings.neon.sampling_conn) {
    sampling_pool_.emplace(SamplingPoolSettings(settings.pool),
                           NeonConnParams(settings.neon, *settings.neon.sampling_conn),
                           settings.database.connect_timeout, Pool::Clock{}, abort);
  }
}

std::optional<Pool::Lease> ConnectionSource::SamplingLease(
    std::chrono::steady_clock::time_point deadline) {
  // While it backs off after a failed connect, no network at all. NextConnectAllowed returns
  // its own "now" when not backing off, so it must be read before the clock it is compared to.
  const auto allowed = sampling_pool_->NextConnectAllowed();
  if (allowed > std::chrono::steady_clock::now()) return std::nullopt;
  auto lease = sampling_pool_->Acquire(deadline);
  if (!lease) {
    if (!sampling_pool_failing_) {
      LogWarn("cannot connect to neon.sampling_url; sampling paused until it works",
              {{"kind", std::string(ErrorKindName(lease.error().kind))},
               {"error", lease.error().message}});
    }
    sampling_pool_failing_ = true;
    if (on_sampling_lost_) on_sampling_lost_("cannot connect to neon.sampling_url");
    return std::nullopt;
  }
  if (sampling_pool_failing_) LogInfo("connected to neon.sampling_url; sampling resumed", {});
  sampling_pool_failing_ = false;
  return std::move(*lease);
}

bool ConnectionSource::WithJobConnection(std::chrono::steady_clock::time_point deadline,
                                         Connection* held,
                                         const std::function<void(Connection&)>& fn) {
  if (sampling_pool_) {
    auto lease = SamplingLease(deadline);
    if (!lease) return false;
    RunGuarded(lease->conn(), fn);
    return true;
  }
  if (held) {
    RunGuarded(*held, fn);
    return true;
  }
  if (idle_sessions_only_) {
    auto idle = pool_.AcquireIdle(deadline);
    if (!idle) return false;
    RunGuarded(idle->conn(), fn);
    return true;
  }
  // The probe owns the main pool's connects and their backoff: jobs never open one while it
  // backs off.
  // NextConnectAllowed returns its own "now" when not backing off: read it first.
  const auto allowed = pool_.NextConnectAllowed();
  if (allowed > std::chrono::steady_clock::now()) {
    LogDebug("no connection for a job while the pool backs off", {});
    return false;
  }
  auto lease = pool_.Acquire(deadline);
  if (!lease) {
    LogDebug("no connection for a job; it runs in a later window",
             {{"kind", std::string(ErrorKindName(lease.error().kind))},
              {"error", lease.error().message}});
    return false;
  }
  RunGuarded(lease->conn(), fn);
  return true;
}

OwnUsage ConnectionSource::OwnUsageNow() const {
  OwnUsage own;
  auto add = [&own](const Pool& pool, const ConnParams& params) {
    if (NeonExcludedDatabase(params.Database())) return;
    const PoolStats st = pool.Stats();
    own.connects += st.opened_total;
    own.exec_ms += st.exec_seconds_total * 1000.0;
  };
  add(pool_, settings_.database.conn);
  if (sampling_pool_ && settings_.neon.sampling_conn) {
    add(*sampling_pool_, *settings_.neon.sampling_conn);
  }
  return own;
}

void ConnectionSource::Maintain() {
  pool_.Maintain();
  if (sampling_pool_) sampling_pool_->Maintain();
}

void ConnectionSource::CloseAll(const std::string& reason) {
  pool_.CloseAll(reason);
  if (sampling_pool_) sampling_pool_->CloseAll(reason);
}

}  // namespace pgvigil
