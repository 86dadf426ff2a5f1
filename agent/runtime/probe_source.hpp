#pragma once
// ProbeSource: the database side of the probe, the seam where tests inject simulated outcomes
// (tests/runtime/scheduler_test.cpp) while the live tests drive the real PoolProbeSource against
// real servers. One probe = connect if needed, then the probe statement under its deadline; the
// session stays checked out until EndSession so the Neon activity check and the last statements
// window can use it.
// Not thread-safe: the scheduler thread only.
#include <chrono>
#include <optional>
#include <string>

#include "config/settings.hpp"
#include "health/health_model.hpp"
#include "neon/activity_probe.hpp"

namespace pgvigil {

class Connection;
class ConnectionSource;
class ScopedSpan;
class Tracer;

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
  virtual ProbeAttempt Probe(std::optional<Millis> connect_timeout, ScopedSpan& root) = 0;
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
  ProbeAttempt Probe(std::optional<Millis> connect_timeout, ScopedSpan& root) override;
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
