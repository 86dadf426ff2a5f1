#pragma once
// Pool: a tiny set (1..4) of libpq connections for pgvigil's own queries. Connect deadline,
// max lifetime with jitter, idle close, validation of connections that sat idle, discard on
// connection-level errors, reconnect backoff (exponential + full jitter; slower after a
// misconfiguration so a wrong password never becomes a connection storm).
// Not thread-safe: owned and used only by the scheduler thread (leases too); Stats() is copied into
// snapshots.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/settings.hpp"
#include "db/connection.hpp"
#include "util/backoff.hpp"

namespace pgvigil {

struct PoolStats {
  int max_size = 0;
  int open = 0;  // connections currently open (idle + busy)
  int idle = 0;
  int busy = 0;     // checked out
  int waiting = 0;  // always 0: one thread uses the pool (kept for the /health shape)
  std::uint64_t opened_total = 0;
  // Connection::exec_time summed over every connection this pool opened (open or closed).
  double exec_seconds_total = 0;
  std::map<std::string, std::uint64_t> closed_total;  // reason: lifetime|idle|broken|shutdown
  std::map<std::string, std::uint64_t> connect_errors_total;  // ErrorKindName
  std::optional<std::string> last_connect_error;              // scrubbed message
  double last_connect_seconds = 0;
  bool backing_off = false;
};

// What happened when a lease was obtained: useful for spans and the cold-start logic.
struct ConnectInfo {
  bool new_connection = false;
  std::chrono::nanoseconds connect_duration{0};
};

// Deadlines are always real std::chrono::steady_clock times (the connection polls against them);
// the injectable Clock only drives lifetime, idle, validation and backoff bookkeeping (tests).
class Pool {
 public:
  using Clock = std::function<SteadyTime()>;
  // `abort` (optional, must outlive the pool) cuts connects and queries short at shutdown.
  Pool(PoolSettings settings, ConnParams params, Millis connect_timeout, Clock clock = {},
       const AbortSignal* abort = nullptr);
  ~Pool();

  // A checked-out connection. It goes back to the pool when the Lease is destroyed (or earlier
  // with Pool::Release); should an exception be unwinding then, the connection is marked broken
  // first (its session is in an unknown state). Move-only; must not outlive its Pool.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          conn_(std::exchange(other.conn_, nullptr)),
          slot_(std::exchange(other.slot_, -1)),
          uncaught_(other.uncaught_),
          info_(other.info_) {}
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Return(); }

    Connection& conn() { return *conn_; }
    const ConnectInfo& info() const { return info_; }
    // Gives the connection back now (idempotent).
    void Return();

   private:
    friend class Pool;
    Pool* pool_ = nullptr;
    Connection* conn_ = nullptr;
    int slot_ = -1;
    int uncaught_ = 0;  // std::uncaught_exceptions() when checked out
    ConnectInfo info_;
  };

  // Returns an idle connection (validated first if it sat idle longer than validate_after)
  // or opens a new one within min(deadline, now + connect_timeout); `connect_timeout` replaces
  // the pool's own for this call (a Neon cold start may take longer than a normal connect).
  // While backing off after a failed connect it returns the last error at once without
  // touching the network.
  DbResult<Lease> Acquire(SteadyTime deadline, std::optional<Millis> connect_timeout = {});
  // An idle connection (checked as Acquire does: lifetime, idle time, validation) or nullopt;
  // never opens one (jobs that run before a due probe: the probe owns connects).
  std::optional<Lease> AcquireIdle(SteadyTime deadline);
  // Gives the connection back; it is closed when broken or past its lifetime. Same as letting
  // the Lease go out of scope.
  void Release(Lease lease) { lease.Return(); }
  // Closes idle connections past idle_timeout or max_lifetime. Call on every scheduler tick.
  void Maintain();
  // Closes everything (reason "shutdown" unless given) and resets backoff. A connection that is
  // checked out is closed when it is released.
  void CloseAll(const std::string& reason = "shutdown");
  // Time at which the next connect attempt is allowed (now when not backing off).
  SteadyTime NextConnectAllowed() const;
  PoolStats Stats() const;
  // Connection::statements() summed over every connection this pool opened (open or closed).
  StatementTally Statements() const;

 private:
  struct Slot;
  SteadyTime Now() const;
  // The first usable idle connection, checked out into `out`; false when there is none.
  bool TakeIdle(SteadyTime op_deadline, Lease& out);
  void GiveBack(int slot, const Connection* conn);
  void Close(Slot& slot, const std::string& reason);
  PoolSettings settings_;
  ConnParams params_;
  Millis connect_timeout_;
  Clock clock_;
  const AbortSignal* abort_;
  std::vector<Slot> slots_;
  Backoff backoff_;
  SteadyTime next_connect_allowed_{};
  std::optional<DbError> last_connect_error_;
  PoolStats stats_;
  StatementTally closed_statements_;  // of the connections already closed
};

}  // namespace pgvigil
