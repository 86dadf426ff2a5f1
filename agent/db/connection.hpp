#pragma once
// Connection: one libpq connection driven through the non-blocking API so that every call has a
// hard deadline. A server that stops answering (SIGSTOP, blackhole) costs at most the deadline;
// on a missed deadline the connection is marked broken and must be dropped (we do not PQcancel,
// whose round trip can itself hang on a frozen server).
// Not thread-safe: owned by one thread (the scheduler) at a time. Movable, not copyable.
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/database_url.hpp"
#include "db/abort_signal.hpp"
#include "db/db_error.hpp"
#include "util/result.hpp"

namespace pgvigil {

using SteadyTime = std::chrono::steady_clock::time_point;

// RAII PGresult with typed accessors.
class QueryResult {
 public:
  explicit QueryResult(PGresult* res) : res_(res, &PQclear) {}
  int Rows() const { return PQntuples(res_.get()); }
  int Columns() const { return PQnfields(res_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string Text(int row, int col) const;  // "" for NULL
  std::string ColumnName(int col) const;
  int ColumnIndex(const char* name) const;  // -1 when absent
  std::optional<long long> Int(int row, int col) const;
  std::optional<double> Double(int row, int col) const;
  const PGresult* raw() const { return res_.get(); }

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> res_;
};

// Statements run on a connection (or a pool's connections), by outcome: the probe lets a job's
// successful statement stand for its own (runtime/probe_source.hpp).
struct StatementTally {
  std::uint64_t ok = 0;      // Exec calls that returned a result (empty queries too)
  std::uint64_t failed = 0;  // Exec calls that returned an error, whatever the error
  std::chrono::system_clock::time_point last_ok_at{};  // when the last success ended; epoch: none
  // Failures because the server ended the session (57P01/57P02/57P03, kAdminShutdown): on Neon a
  // suspend or restart, which the probe must see as it would on its own statement.
  std::uint64_t terminated = 0;
  std::optional<DbError> last_terminated;
  void Add(const StatementTally& other) {
    ok += other.ok;
    failed += other.failed;
    last_ok_at = std::max(last_ok_at, other.last_ok_at);
    terminated += other.terminated;
    if (other.last_terminated) last_terminated = other.last_terminated;
  }
};

// A value or a DbError (util/result.hpp); `return tl::make_unexpected(error);` makes the error
// side.
template <typename T>
using DbResult = Result<T, DbError>;

class Connection {
 public:
  // Connects within `deadline` (overall, across all hosts/addresses, DNS lookups included: see
  // host_resolver.hpp). Never blocks past it. Always with client_encoding=UTF8 (a URL's own
  // client_encoding is ignored), so results and server messages arrive as UTF-8. With `abort`,
  // this connect and every later Exec on the connection end at once (kTimeout, "shutting down")
  // when it is triggered.
  static DbResult<Connection> Open(const ConnParams& params, SteadyTime deadline,
                                   const AbortSignal* abort = nullptr);

  Connection(Connection&&) noexcept;  // defined where Impl is complete
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one statement with the extended protocol and the unnamed statement (pooler-safe),
  // text parameters, text results. On a missed deadline returns kTimeout and marks broken.
  // With several statements or results, the last result is returned.
  DbResult<QueryResult> Exec(const std::string& sql, const std::vector<std::string>& params,
                             SteadyTime deadline);
  DbResult<QueryResult> Exec(const std::string& sql, SteadyTime deadline) {
    return Exec(sql, {}, deadline);
  }

  bool broken() const;  // a deadline was missed or the socket failed: discard it
  // A comment appended (on its own line) to every statement until cleared with "" — used for
  // the sqlcommenter `/*traceparent='...'*/` tag of the span a statement belongs to. The caller
  // must pass a well-formed comment.
  void SetStatementComment(std::string comment);
  void MarkBroken();  // the owner decided to discard it (e.g. after a protocol surprise)
  // After a missed deadline: asks the server to cancel the statement it may still be running
  // (db/cancel_request.hpp: from a helper thread, never blocking the caller). False when no
  // request went out.
  bool RequestCancel();
  int backend_pid() const;
  // Client-side time spent in Exec since the connection opened (every statement, from send to
  // the last result). It bounds this session's pg_stat_database.active_time from above: the
  // server counts a statement as active only between receiving it and reporting idle, before
  // ReadyForQuery. The Neon activity check subtracts it to tell its own work from an app's.
  std::chrono::nanoseconds exec_time() const;
  StatementTally statements() const;  // every Exec since the connection opened, by outcome
  int server_version() const;         // PQserverVersion
  std::string parameter(const char* name) const;  // PQparameterStatus, "" when unknown

 private:
  Connection() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgvigil
