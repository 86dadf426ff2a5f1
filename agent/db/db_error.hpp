#pragma once
// DbError: a classified database failure, reported as a value by the running loop.
// Classification uses SQLSTATE when the server sent one, else libpq's message text (including
// the texts of Neon's proxy). Pure functions, thread-safe.
#include <string>
#include <string_view>
#include <vector>

namespace pgvigil {

enum class ErrorKind {
  kTimeout,             // our deadline passed (connect or query)
  kRefused,             // TCP connection refused / no server on the socket
  kReset,               // connection closed or reset by the server mid-way
  kDns,                 // host name does not resolve
  kTls,                 // TLS required but unavailable, handshake or certificate failure
  kAuth,                // password/auth failed, role missing, no pg_hba entry
  kDatabaseMissing,     // database does not exist
  kTooManyConnections,  // 53300, "too many clients", Neon "Too many database connection attempts"
  kAdminShutdown,       // 57P01/57P02/57P03: terminated by admin, shutting down, starting up
  kServerError,         // any other error with a SQLSTATE
  kNeonWaking,          // Neon "Couldn't connect to compute node": transient while waking
  kNeonQuota,           // Neon "endpoint is temporarily unavailable" / quota exceeded
  kNeonDisabled,        // Neon "endpoint is disabled"
  kNeonNotFound,        // Neon "endpoint cannot be found"
  kNeonSni,             // Neon "The endpoint ID is not specified"
  kProtocol,            // the peer does not speak the PostgreSQL protocol
  kConfig,              // bad connection parameters
  kUnknown,
};

struct DbError {
  ErrorKind kind = ErrorKind::kUnknown;
  std::string sqlstate;  // 5 chars, or "" when the server sent none
  std::string message;   // one line, secrets scrubbed, no trailing newline

  // Retrying soon may help (timeouts, refused, reset, waking, too many connections, ...).
  bool Transient() const;
  // The configuration must change before this can succeed (auth, db missing, TLS, Neon
  // quota/disabled/not found/SNI, protocol (host/port point at something else), config).
  bool Misconfiguration() const;
  // The connection this happened on is unusable and must be discarded (every kind except
  // kServerError, which is a statement-level error such as a syntax error or statement_timeout).
  bool ConnectionLost() const;
  // A short sentence telling the operator what to do about it ("" when nothing specific).
  std::string Hint() const;
};

// Stable lower_snake_case name used in logs, /health and metric labels: "timeout", "refused",
// "reset", "dns", "tls", "auth", "database_missing", "too_many_connections", "admin_shutdown",
// "server_error", "neon_waking", "neon_quota", "neon_disabled", "neon_not_found", "neon_sni",
// "protocol", "config", "unknown".
std::string_view ErrorKindName(ErrorKind kind);

// Classifies from a SQLSTATE ("" if none) and libpq's message. Scrubs nothing: callers scrub.
DbError ClassifyError(std::string_view sqlstate, std::string_view message);

// libpq messages span lines ("connection to server at ... failed: FATAL:  ...\n", one per
// host tried, plus DETAIL/HINT); logs and /health want one line. Scrubs nothing: the message is
// classified first (a scrubbed short password could mangle the words classification reads).
std::string FoldMessage(std::string_view text);

// The message as reported: `secrets` scrubbed (ScrubSecrets), then bounded to 512 bytes.
std::string ReportedMessage(std::string text, const std::vector<std::string>& secrets);

}  // namespace pgvigil
