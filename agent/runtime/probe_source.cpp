#include "runtime/probe_source.hpp"

#include "health/prober.hpp"
#include "runtime/connection_source.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"

namespace pgvigil {

namespace {
// A job's statement in this tick met the server ending the session: the probe's result.
bool ForwardTermination(const TickTraffic& traffic, const StatementTally& now, ProbeAttempt& a) {
  if (now.terminated <= traffic.since.terminated || !now.last_terminated) return false;
  a.connected = true;  // on the session pgvigil had, as the probe statement would have met it
  a.result.at = std::chrono::system_clock::now();
  a.result.error = now.last_terminated;
  return true;
}
}  // namespace

struct PoolProbeSource::Session {
  Pool::Lease lease;
};

PoolProbeSource::PoolProbeSource(const Settings& settings, ConnectionSource& connections,
                                 Tracer* tracer)
    : settings_(settings), connections_(connections), tracer_(tracer) {}

PoolProbeSource::~PoolProbeSource() = default;

std::chrono::steady_clock::time_point PoolProbeSource::NextConnectAllowed() const {
  return connections_.main().NextConnectAllowed();
}

StatementTally PoolProbeSource::Statements() const { return connections_.main().Statements(); }

ProbeAttempt PoolProbeSource::Probe(std::optional<Millis> connect_timeout, ScopedSpan& root,
                                    const TickTraffic* traffic) {
  using SteadyClock = std::chrono::steady_clock;
  const auto& conn_params = settings_.database.conn;
  const DbCallInfo connect_call{conn_params.Database(), "connect", "", conn_params.Host(),
                                conn_params.Port()};
  const auto started_wall = std::chrono::system_clock::now();
  const auto started = SteadyClock::now();
  const bool cold = connect_timeout.has_value();
  session_.reset();
  ProbeAttempt a;
  ProbeResult& r = a.result;
  if (traffic && ForwardTermination(*traffic, connections_.main().Statements(), a)) return a;
  auto lease = connections_.main().Acquire(SteadyClock::time_point::max(), connect_timeout);
  if (!lease) {
    r.at = std::chrono::system_clock::now();
    r.latency = SteadyClock::now() - started;
    r.error = lease.error();
    if (tracer_) {
      auto connect = StartDbClientSpan(*tracer_, connect_call, &root, started_wall);
      connect.SetDbError(r.error->sqlstate, r.error->message, ErrorKindName(r.error->kind));
    }
    return a;
  }
  session_ = std::make_unique<Session>(Session{std::move(*lease)});
  a.connected = true;
  Connection& conn = session_->lease.conn();
  r.new_connection = session_->lease.info().new_connection;
  r.connect_duration = session_->lease.info().connect_duration;
  if (r.new_connection && tracer_) {
    auto connect = StartDbClientSpan(*tracer_, connect_call, &root, started_wall);
    connect.SetAttribute("pgvigil.cold_start", cold);
    connect.End(started_wall + std::chrono::duration_cast<SpanTime::duration>(r.connect_duration));
  }
  if (traffic && traffic->jobs_ok && !r.new_connection) {
    const StatementTally now = connections_.main().Statements();
    if (now.ok > traffic->since.ok && now.failed == traffic->since.failed) {
      r.ok = true;  // a statement of this tick answered: it stands for the probe statement
      r.by_traffic = true;
      r.at = now.last_ok_at;
      root.SetAttribute("pgvigil.probe.by_traffic", true);
      return a;
    }
  }
  ScopedSpan query;
  std::string sql = kProbeSql;
  if (tracer_) {
    query = StartDbClientSpan(
        *tracer_,
        {conn_params.Database(), "SELECT", "SELECT ?", conn_params.Host(), conn_params.Port()},
        &root);
    sql = SqlCommenter(sql, query.Traceparent());
  }
  const auto query_start = SteadyClock::now();
  auto res = conn.Exec(sql, query_start + settings_.probe.timeout);
  r.latency = SteadyClock::now() - query_start;
  r.at = std::chrono::system_clock::now();
  if (res && res->Rows() == 1 && res->Text(0, 0) == "1") {
    r.ok = true;
    query.SetOk();
  } else {
    r.error = res ? DbError{ErrorKind::kProtocol, "", "probe returned an unexpected result"}
                  : res.error();
    query.SetDbError(r.error->sqlstate, r.error->message, ErrorKindName(r.error->kind));
  }
  return a;
}

Connection* PoolProbeSource::session() { return session_ ? &session_->lease.conn() : nullptr; }

void PoolProbeSource::EndSession() { session_.reset(); }

void PoolProbeSource::CloseAll(const std::string& reason) { connections_.CloseAll(reason); }

OwnUsage PoolProbeSource::OwnUsageNow() const { return connections_.OwnUsageNow(); }

}  // namespace pgvigil
