#pragma once
// ProbeSource: the database side of the probe, the seam where tests inject simulated outcomes
// (tests/runtime/scheduler_test.cpp) while the live tests drive the real PoolProbeSource against
// real servers. One probe = connect if needed, then the probe statement under its deadline; the
// session stays checked out until EndSession so the Neon activity check and the last statements
// window can use it.
// By traffic (probe.reuse_traffic): jobs on the probe's pool may have run first in this tick
// (TickTraffic). When one of their statements was ended by the server (57P01/57P02/57P03), that
// is the probe's result, as if its own statement had met it (no reconnect: a suspended Neon
// compute stays asleep). Else, when the jobs succeeded (jobs_ok), a statement succeeded and none
// failed since the tick began, and the pool hands back an open session, the probe sends no
// statement: a success by traffic, `at` the end of the last successful statement. Else the probe
// statement. Not thread-safe: the scheduler thread only.
#include <chrono>
#include <optional>
#include <string>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "health/health_model.hpp"
#include "neon/activity_probe.hpp"

namespace pgvigil {

class Connection;
class ConnectionSource;
class ScopedSpan;
class Tracer;

// What the jobs that ran before this tick's probe left on the probe's pool.
struct TickTraffic {
  StatementTally since;  // the pool's Statements() when the tick began
  // The jobs that ran succeeded, one with a statement that did: a success may stand for the
  // probe. False (a job failed or was skipped, or the fleet gate said no): only a session ended
  // by the server is taken from the tally; else the probe statement runs.
  bool jobs_ok = false;
};

struct ProbeAttempt {
  ProbeResult result;
  bool connected = false;  // a session was had (it may still have failed the probe statement)
};

class ProbeSource {
 public:
  virtual ~ProbeSource() = default;
  // When the next connect is allowed (the pool's backoff); the clock's now when not backing off.
  virtual std::chrono::steady_clock::time_point NextConnectAllowed() const = 0;
  // `connect_timeout` replaces the pool's for this call (a Neon cold start); `root` is the
  // probe's span (inert without a tracer), parent of the connect and query spans.
  // `traffic` (null when no job ran before the probe in this tick): see above.
  virtual ProbeAttempt Probe(std::optional<Millis> connect_timeout, ScopedSpan& root,
                             const TickTraffic* traffic) = 0;
  // The statements run on the probe's pool so far (every user of that pool), by outcome.
  virtual StatementTally Statements() const = 0;
  // The session of the last Probe while still held; null after a failed connect (and in tests).
  virtual Connection* session() = 0;
  virtual void EndSession() = 0;  // gives the session back (broken ones are closed)
  virtual void CloseAll(const std::string& reason) = 0;
  virtual OwnUsage OwnUsageNow() const = 0;
};

// The real one: the main pool of `connections`, spans on `tracer` (may be null).
class PoolProbeSource final : public ProbeSource {
 public:
  PoolProbeSource(const Settings& settings, ConnectionSource& connections, Tracer* tracer);
  ~PoolProbeSource() override;
  std::chrono::steady_clock::time_point NextConnectAllowed() const override;
  ProbeAttempt Probe(std::optional<Millis> connect_timeout, ScopedSpan& root,
                     const TickTraffic* traffic) override;
  StatementTally Statements() const override;
  Connection* session() override;
  void EndSession() override;
  void CloseAll(const std::string& reason) override;
  OwnUsage OwnUsageNow() const override;

 private:
  struct Session;
  const Settings& settings_;
  ConnectionSource& connections_;
  Tracer* tracer_;
  std::unique_ptr<Session> session_;
};

}  // namespace pgvigil
