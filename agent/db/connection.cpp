#include "db/connection.hpp"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "db/cancel_request.hpp"
#include "db/host_resolver.hpp"
#include "db/read_guard.hpp"

namespace pgvigil {
namespace {

// What one statement may bring back. pgvigil's largest answer (pg_stat_statements at its
// maximum with long texts) is a few MiB; a peer that sends more (a 1 GiB DataRow) is cut off
// here instead of growing libpq's buffer to it.
constexpr size_t kMaxResultBytes = 64u << 20;

int RemainingMs(SteadyTime deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count());
}

enum class Wait { kReady, kTimeout, kAborted };

// Waits for `events` on `fd` until the deadline or until `abort` is triggered. kReady also on a
// poll error, which the following libpq call reports properly.
Wait WaitSocket(int fd, short events, SteadyTime deadline, const AbortSignal* abort) {
  while (true) {
    if (abort != nullptr && abort->triggered()) return Wait::kAborted;
    int ms = RemainingMs(deadline);
    if (ms == 0) return Wait::kTimeout;
    pollfd pfd[2] = {{fd, events, 0}, {abort != nullptr ? abort->fd() : -1, POLLIN, 0}};
    int rc = poll(pfd, 2, ms);
    if (rc > 0 && pfd[1].revents != 0) return Wait::kAborted;
    if (rc > 0) return Wait::kReady;
    if (rc == 0) continue;  // loop re-checks the deadline
    if (errno != EINTR) return Wait::kReady;
  }
}

std::string Endpoint(const ConnParams& params) {
  std::string host = params.Host();
  if (host.empty()) host = "local socket";
  return host + ":" + std::to_string(params.Port());
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Connection::Impl {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn{nullptr, &PQfinish};
  std::vector<std::string> secrets;
  std::string endpoint;  // host:port, for messages
  bool broken = false;
  std::string statement_comment;  // appended to every statement while set
  const AbortSignal* abort = nullptr;
  std::chrono::nanoseconds exec_time{0};
  StatementTally statements;

  // A FATAL message the server sent while the session sat idle (57P01 when an administrator or
  // Neon's suspend ends it): libpq hands it to the notice receiver, not to a query.
  std::optional<DbError> server_fatal;

  // Classified on the server's or libpq's own words, scrubbed after.
  DbError Error(std::string_view sqlstate, std::string_view message) const {
    DbError e = ClassifyError(sqlstate, FoldMessage(message));
    e.message = ReportedMessage(std::move(e.message), secrets);
    return e;
  }
  // Why the connection failed: the server's own FATAL message when it sent one.
  DbError ConnError() const {
    if (server_fatal) return *server_fatal;
    return Error("", PQerrorMessage(conn.get()));
  }

  static void OnNotice(void* arg, const PGresult* r) {
    const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (!severity || (std::strcmp(severity, "FATAL") != 0 && std::strcmp(severity, "PANIC") != 0)) {
      return;
    }
    auto* self = static_cast<Impl*>(arg);
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    self->server_fatal = self->Error(state ? state : "", primary ? primary : "");
  }

  // Before a query: reads what the server sent while we were idle, so a session it ended is
  // reported with its reason instead of as a failed write. False when the session is over.
  bool StillOpen() {
    PGconn* c = conn.get();
    pollfd pfd{PQsocket(c), POLLIN, 0};
    bool open = true;
    if (poll(&pfd, 1, 0) > 0) {
      open = PQconsumeInput(c) == 1;
      PQisBusy(c);  // parses what was read (even after EOF): an idle-time error -> OnNotice
    }
    return open && !server_fatal && PQstatus(c) != CONNECTION_BAD;
  }
};

Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

DbResult<Connection> Connection::Open(const ConnParams& params, SteadyTime deadline,
                                      const AbortSignal* abort) {
  auto impl = std::make_unique<Impl>();
  impl->secrets = params.Secrets();
  impl->endpoint = Endpoint(params);
  impl->abort = abort;

  // Names are resolved here, under the deadline, instead of by a blocking lookup inside libpq.
  ConnParams resolved;
  if (auto r =
          ResolveHosts(params, deadline, abort != nullptr ? abort->token() : std::stop_token{})) {
    resolved = std::move(*r);
  } else {
    return tl::make_unexpected(DbError{r.error().kind, r.error().sqlstate,
                                       ScrubSecrets(std::move(r.error().message), impl->secrets)});
  }
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : resolved.params) {
    if (k == "client_encoding") continue;
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  // pgvigil reads every text as UTF-8: the server converts from any database encoding (a LATIN1
  // database's names, literals and messages arrive as valid UTF-8), whatever the URL says.
  keys.push_back("client_encoding");
  values.push_back("UTF8");
  keys.push_back(nullptr);
  values.push_back(nullptr);
  impl->conn.reset(PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/0));
  if (!impl->conn) {
    return tl::make_unexpected(
        DbError{ErrorKind::kUnknown, "", "libpq could not allocate a connection"});
  }
  PGconn* c = impl->conn.get();
  if (PQstatus(c) == CONNECTION_BAD) {
    return tl::make_unexpected(impl->ConnError());
  }
  auto timed_out = [&](Wait why) {
    DbError e{ErrorKind::kTimeout, "",
              why == Wait::kAborted
                  ? "connection to " + impl->endpoint + " abandoned: pgvigil is shutting down"
                  : "connection to " + impl->endpoint + " timed out (connect deadline passed)"};
    e.message = ScrubSecrets(std::move(e.message), impl->secrets);
    return e;
  };
  // libpq's contract: start as if PQconnectPoll had returned PGRES_POLLING_WRITING.
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (true) {
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED) {
      return tl::make_unexpected(impl->ConnError());
    }
    int fd = PQsocket(c);  // may change as libpq moves on to the next host/address
    if (fd < 0) {
      return tl::make_unexpected(impl->ConnError());
    }
    short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (const Wait w = WaitSocket(fd, events, deadline, abort); w != Wait::kReady) {
      return tl::make_unexpected(timed_out(w));
    }
    st = PQconnectPoll(c);
  }
  if (PQsetnonblocking(c, 1) != 0) {
    return tl::make_unexpected(impl->ConnError());
  }
  // Impl lives on the heap, so the pointer stays valid when the Connection moves.
  PQsetNoticeReceiver(c, &Impl::OnNotice, impl.get());
  Connection conn;
  conn.impl_ = std::move(impl);
  return conn;
}

DbResult<QueryResult> Connection::Exec(const std::string& sql,
                                       const std::vector<std::string>& params,
                                       SteadyTime deadline) {
  struct Meter {  // adds this call's duration and outcome to the tallies on every return path
    Impl* impl;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    bool ok = false;
    ~Meter() {
      if (!impl) return;
      impl->exec_time += std::chrono::steady_clock::now() - start;
      if (ok) impl->statements.last_ok_at = std::chrono::system_clock::now();
      ++(ok ? impl->statements.ok : impl->statements.failed);
    }
  } meter{impl_.get()};
  auto fail = [this](DbError e) {
    if (e.kind == ErrorKind::kTimeout || !impl_->conn ||
        PQstatus(impl_->conn.get()) == CONNECTION_BAD) {
      impl_->broken = true;
    }
    if (e.kind == ErrorKind::kAdminShutdown) {
      ++impl_->statements.terminated;
      impl_->statements.last_terminated = e;
    }
    return DbResult<QueryResult>(tl::make_unexpected(std::move(e)));
  };
  if (!impl_ || !impl_->conn || impl_->broken) {
    return tl::make_unexpected(
        DbError{ErrorKind::kReset, "", "connection is broken; open a new one"});
  }
  PGconn* c = impl_->conn.get();
  if (!impl_->StillOpen()) {
    impl_->broken = true;
    return fail(impl_->ConnError());
  }
  auto timed_out = [&](Wait why) {
    impl_->broken = true;  // the answer may still arrive; the session state is unknown
    return DbError{ErrorKind::kTimeout, "",
                   why == Wait::kAborted
                       ? "query on " + impl_->endpoint + " abandoned: pgvigil is shutting down"
                       : "query on " + impl_->endpoint + " timed out (deadline passed)"};
  };

  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  // The comment goes on its own line so a trailing `--` comment in `sql` cannot swallow it.
  const std::string text =
      impl_->statement_comment.empty() ? sql : sql + "\n" + impl_->statement_comment;
  if (!PQsendQueryParams(c, text.c_str(), static_cast<int>(params.size()), nullptr,
                         values.empty() ? nullptr : values.data(), nullptr, nullptr, 0)) {
    impl_->broken = impl_->broken || PQstatus(c) == CONNECTION_BAD;
    return fail(impl_->ConnError());
  }
  // Push the whole request out; a full socket buffer also means we must read meanwhile.
  while (true) {
    int f = PQflush(c);
    if (f == 0) break;
    if (f < 0) {
      impl_->broken = true;
      return fail(impl_->ConnError());
    }
    if (const Wait w = WaitSocket(PQsocket(c), POLLIN | POLLOUT, deadline, impl_->abort);
        w != Wait::kReady) {
      return fail(timed_out(w));
    }
    if (!PQconsumeInput(c)) {
      impl_->broken = true;
      return fail(impl_->ConnError());
    }
  }

  std::optional<QueryResult> last;
  std::optional<DbError> first_error;
  // libpq may stay inside PQconsumeInput for as long as a peer keeps sending: the guard cuts
  // the socket off at the deadline or past kMaxResultBytes.
  const ReadGuard guard(PQsocket(c), deadline, kMaxResultBytes);
  auto cut_off = [&]() -> std::optional<DbError> {
    switch (guard.tripped()) {
      case ReadGuard::Trip::kNone:
        return std::nullopt;
      case ReadGuard::Trip::kDeadline:
        return timed_out(Wait::kTimeout);
      case ReadGuard::Trip::kTooLarge:
        impl_->broken = true;
        return DbError{ErrorKind::kProtocol, "",
                       "the answer from " + impl_->endpoint + " passed " +
                           std::to_string(kMaxResultBytes >> 20) +
                           " MiB for one statement (result size limit); connection closed"};
    }
    return std::nullopt;
  };
  while (true) {
    while (PQisBusy(c)) {
      if (auto e = cut_off()) return fail(std::move(*e));
      if (const Wait w = WaitSocket(PQsocket(c), POLLIN, deadline, impl_->abort);
          w != Wait::kReady) {
        return fail(timed_out(w));
      }
      if (!PQconsumeInput(c)) {
        if (auto e = cut_off()) return fail(std::move(*e));
        impl_->broken = true;
        // A FATAL error (e.g. 57P01) may have been read before the socket closed.
        if (PGresult* r = PQgetResult(c)) {
          QueryResult q(r);
          if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
            const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            return fail(
                impl_->Error(state ? state : "", primary ? primary : PQresultErrorMessage(r)));
          }
        }
        return fail(impl_->ConnError());
      }
    }
    PGresult* r = PQgetResult(c);
    if (r == nullptr) break;
    QueryResult q(r);
    switch (PQresultStatus(r)) {
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        last.emplace(std::move(q));
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_NONFATAL_ERROR: {
        if (!first_error) {
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
          first_error =
              impl_->Error(state ? state : "", primary ? primary : PQresultErrorMessage(r));
        }
        break;
      }
      case PGRES_BAD_RESPONSE:
        impl_->broken = true;
        if (!first_error) first_error = impl_->Error("", PQresultErrorMessage(r));
        first_error->kind = ErrorKind::kProtocol;
        break;
      default:
        // COPY and pipeline results are not something pgvigil issues; the session is in a
        // state we do not drive, so it goes.
        impl_->broken = true;
        if (!first_error) {
          first_error =
              DbError{ErrorKind::kUnknown, "",
                      std::string("unexpected result status ") + PQresStatus(PQresultStatus(r))};
        }
        return fail(*first_error);
    }
  }
  if (auto e = cut_off()) return fail(std::move(*e));
  if (PQstatus(c) == CONNECTION_BAD) impl_->broken = true;
  if (first_error) return fail(std::move(*first_error));
  if (!last) {
    impl_->broken = true;
    return fail(DbError{ErrorKind::kProtocol, "", "the server sent no result"});
  }
  meter.ok = true;
  return std::move(*last);
}

bool Connection::broken() const {
  return !impl_ || !impl_->conn || impl_->broken || PQstatus(impl_->conn.get()) == CONNECTION_BAD;
}

void Connection::SetStatementComment(std::string comment) {
  if (impl_) impl_->statement_comment = std::move(comment);
}

bool Connection::RequestCancel() {
  return impl_ && impl_->conn && SendCancelInBackground(impl_->conn.get());
}

void Connection::MarkBroken() {
  if (impl_) impl_->broken = true;
}

std::chrono::nanoseconds Connection::exec_time() const {
  return impl_ ? impl_->exec_time : std::chrono::nanoseconds(0);
}

StatementTally Connection::statements() const {
  return impl_ ? impl_->statements : StatementTally{};
}

int Connection::backend_pid() const { return impl_ ? PQbackendPID(impl_->conn.get()) : 0; }

int Connection::server_version() const { return impl_ ? PQserverVersion(impl_->conn.get()) : 0; }

std::string Connection::parameter(const char* name) const {
  if (!impl_) return "";
  const char* v = PQparameterStatus(impl_->conn.get(), name);
  return v ? v : "";
}

}  // namespace pgvigil
