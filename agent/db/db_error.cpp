#include "db/db_error.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

#include "config/database_url.hpp"  // ScrubSecrets

namespace pgvigil {
namespace {

bool ContainsNoCase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

std::optional<ErrorKind> KindFromSqlstate(std::string_view s) {
  if (s == "28P01" || s == "28000") return ErrorKind::kAuth;
  if (s == "3D000") return ErrorKind::kDatabaseMissing;
  if (s == "53300") return ErrorKind::kTooManyConnections;
  if (s == "57P01" || s == "57P02" || s == "57P03") return ErrorKind::kAdminShutdown;
  return std::nullopt;
}

bool IsConnectionClass(std::string_view s) {
  return s.starts_with("08") || s.starts_with("XX") || s.starts_with("28") || s.starts_with("53") ||
         s.starts_with("57") || s.starts_with("58");
}

// Ordered: the first matching text wins, so more specific texts come first (Neon's proxy
// texts before generic ones; "SSL ... closed unexpectedly" is a reset, not a TLS problem).
// libpq and the server localize nothing for us (lc_messages=C on the client side), but
// matching is case-insensitive anyway.
struct TextRule {
  std::string_view text;
  ErrorKind kind;
};
constexpr std::array kTextRules = {
    // Neon proxy.
    TextRule{"Couldn't connect to compute node", ErrorKind::kNeonWaking},
    TextRule{"Too many database connection attempts", ErrorKind::kTooManyConnections},
    TextRule{"endpoint is disabled", ErrorKind::kNeonDisabled},
    TextRule{"endpoint cannot be found", ErrorKind::kNeonNotFound},
    TextRule{"endpoint could not be found", ErrorKind::kNeonNotFound},
    TextRule{"endpoint is temporarily unavailable", ErrorKind::kNeonQuota},
    TextRule{"endpoint ID is not specified", ErrorKind::kNeonSni},
    // Our own deadline or libpq's connect_timeout.
    TextRule{"timeout expired", ErrorKind::kTimeout},
    TextRule{"timed out", ErrorKind::kTimeout},
    // Authentication.
    TextRule{"password authentication failed", ErrorKind::kAuth},
    TextRule{"no pg_hba.conf entry", ErrorKind::kAuth},
    TextRule{"SASL authentication failed", ErrorKind::kAuth},
    TextRule{"no password supplied", ErrorKind::kAuth},
    TextRule{"authentication failed", ErrorKind::kAuth},
    // Server state.
    TextRule{"too many clients already", ErrorKind::kTooManyConnections},
    TextRule{"too many connections", ErrorKind::kTooManyConnections},
    TextRule{"remaining connection slots are reserved", ErrorKind::kTooManyConnections},
    TextRule{"terminating connection due to administrator command", ErrorKind::kAdminShutdown},
    TextRule{"the database system is shutting down", ErrorKind::kAdminShutdown},
    TextRule{"the database system is starting up", ErrorKind::kAdminShutdown},
    TextRule{"the database system is not yet accepting connections", ErrorKind::kAdminShutdown},
    TextRule{"the database system is in recovery mode", ErrorKind::kAdminShutdown},
    // A peer that is not PostgreSQL (checked before the resets it tends to end with).
    TextRule{"received invalid response", ErrorKind::kProtocol},
    TextRule{"expected authentication request", ErrorKind::kProtocol},
    TextRule{"invalid response to SSL negotiation", ErrorKind::kProtocol},
    TextRule{"unexpected message type", ErrorKind::kProtocol},
    TextRule{"lost synchronization with server", ErrorKind::kProtocol},
    TextRule{"unsupported frontend protocol", ErrorKind::kProtocol},
    // Connection dropped.
    TextRule{"server closed the connection unexpectedly", ErrorKind::kReset},
    TextRule{"SSL connection has been closed unexpectedly", ErrorKind::kReset},
    TextRule{"SSL SYSCALL error", ErrorKind::kReset},
    TextRule{"Connection reset by peer", ErrorKind::kReset},
    TextRule{"connection to server was lost", ErrorKind::kReset},
    TextRule{"no connection to the server", ErrorKind::kReset},
    TextRule{"Broken pipe", ErrorKind::kReset},
    TextRule{"EOF detected", ErrorKind::kReset},
    TextRule{"connection is broken", ErrorKind::kReset},
    // Nobody listening.
    TextRule{"Connection refused", ErrorKind::kRefused},
    TextRule{"No such file or directory", ErrorKind::kRefused},  // unix socket missing
    TextRule{"Network is unreachable", ErrorKind::kRefused},
    TextRule{"No route to host", ErrorKind::kRefused},
    // Name resolution.
    TextRule{"could not translate host name", ErrorKind::kDns},
    TextRule{"Name or service not known", ErrorKind::kDns},
    TextRule{"Temporary failure in name resolution", ErrorKind::kDns},
    // Bad parameters (libpq's conninfo parser).
    TextRule{"invalid connection option", ErrorKind::kConfig},
    TextRule{"invalid sslmode value", ErrorKind::kConfig},
    TextRule{"invalid URI", ErrorKind::kConfig},
    TextRule{"invalid integer value", ErrorKind::kConfig},
    TextRule{"invalid port number", ErrorKind::kConfig},
    TextRule{"missing \"=\" after", ErrorKind::kConfig},
    // TLS.
    TextRule{"server does not support SSL", ErrorKind::kTls},
    TextRule{"certificate", ErrorKind::kTls},
    TextRule{"SSL", ErrorKind::kTls},
    TextRule{"TLS", ErrorKind::kTls},
};

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kRefused:
      return "refused";
    case ErrorKind::kReset:
      return "reset";
    case ErrorKind::kDns:
      return "dns";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kAuth:
      return "auth";
    case ErrorKind::kDatabaseMissing:
      return "database_missing";
    case ErrorKind::kTooManyConnections:
      return "too_many_connections";
    case ErrorKind::kAdminShutdown:
      return "admin_shutdown";
    case ErrorKind::kServerError:
      return "server_error";
    case ErrorKind::kNeonWaking:
      return "neon_waking";
    case ErrorKind::kNeonQuota:
      return "neon_quota";
    case ErrorKind::kNeonDisabled:
      return "neon_disabled";
    case ErrorKind::kNeonNotFound:
      return "neon_not_found";
    case ErrorKind::kNeonSni:
      return "neon_sni";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kConfig:
      return "config";
    case ErrorKind::kUnknown:
      return "unknown";
  }
  return "unknown";
}

DbError ClassifyError(std::string_view sqlstate, std::string_view message) {
  DbError e;
  e.sqlstate = std::string(sqlstate);
  e.message = std::string(message);
  while (!e.message.empty() && (e.message.back() == '\n' || e.message.back() == ' ')) {
    e.message.pop_back();
  }
  if (auto k = KindFromSqlstate(sqlstate)) {
    e.kind = *k;
    return e;
  }
  // A statement-level error (e.g. 42703 `column "ssl" does not exist`) must not be read as a
  // connection problem; texts matter only without a SQLSTATE or for connection-ish classes
  // (Neon's proxy reports most of its errors as XX000).
  if (!sqlstate.empty() && !IsConnectionClass(sqlstate)) {
    e.kind = ErrorKind::kServerError;
    return e;
  }
  // "role \"x\" does not exist" is an auth problem; "database \"x\" does not exist" is not.
  if (ContainsNoCase(message, "does not exist")) {
    if (ContainsNoCase(message, "role \"")) {
      e.kind = ErrorKind::kAuth;
      return e;
    }
    if (ContainsNoCase(message, "database \"")) {
      e.kind = ErrorKind::kDatabaseMissing;
      return e;
    }
  }
  // Neon's quota texts vary ("exceeded the compute time quota", "data transfer quota");
  // a full disk ("Disk quota exceeded") is a server error, not Neon's quota.
  if (ContainsNoCase(message, "quota") && !ContainsNoCase(message, "disk quota")) {
    e.kind = ErrorKind::kNeonQuota;
    return e;
  }
  for (const TextRule& rule : kTextRules) {
    if (ContainsNoCase(message, rule.text)) {
      e.kind = rule.kind;
      return e;
    }
  }
  if (sqlstate == "08P01") {
    e.kind = ErrorKind::kProtocol;
  } else if (sqlstate.starts_with("08")) {
    e.kind = ErrorKind::kReset;
  } else if (!sqlstate.empty()) {
    e.kind = ErrorKind::kServerError;
  } else {
    e.kind = ErrorKind::kUnknown;
  }
  return e;
}

bool DbError::Transient() const {
  switch (kind) {
    case ErrorKind::kTimeout:
    case ErrorKind::kRefused:
    case ErrorKind::kReset:
    case ErrorKind::kDns:  // resolvers and cluster DNS fail transiently; a typo stays visible
    case ErrorKind::kTooManyConnections:
    case ErrorKind::kAdminShutdown:
    case ErrorKind::kNeonWaking:
    case ErrorKind::kUnknown:
      return true;
    default:
      return false;
  }
}

bool DbError::Misconfiguration() const {
  switch (kind) {
    case ErrorKind::kAuth:
    case ErrorKind::kDatabaseMissing:
    case ErrorKind::kTls:
    case ErrorKind::kNeonQuota:
    case ErrorKind::kNeonDisabled:
    case ErrorKind::kNeonNotFound:
    case ErrorKind::kNeonSni:
    case ErrorKind::kProtocol:  // host/port point at something that is not PostgreSQL
    case ErrorKind::kConfig:
      return true;
    default:
      return false;
  }
}

bool DbError::ConnectionLost() const {
  // A statement-level error (syntax, permission, statement_timeout, ...) leaves the session
  // usable; everything else happens at the connection level.
  return kind != ErrorKind::kServerError;
}

std::string DbError::Hint() const {
  switch (kind) {
    case ErrorKind::kTimeout:
      return "The server did not answer in time: check that it is running and reachable, or "
             "raise the timeout.";
    case ErrorKind::kRefused:
      return "Nothing accepts connections at that address: check host and port and that the "
             "server is running.";
    case ErrorKind::kReset:
      return "The server closed the connection: check the server log (restart, crash, idle "
             "timeout, or a proxy in between).";
    case ErrorKind::kDns:
      return "The host name does not resolve, or the DNS server does not answer: check the host "
             "in the database URL and the resolver (/etc/resolv.conf, the cluster's DNS).";
    case ErrorKind::kTls:
      return "TLS failed: check sslmode in the database URL and the server's TLS setup and "
             "certificates.";
    case ErrorKind::kAuth:
      return "Authentication failed: check the user and password in the database URL and the "
             "server's pg_hba.conf.";
    case ErrorKind::kDatabaseMissing:
      return "The database does not exist: fix the database name in the URL or create it.";
    case ErrorKind::kTooManyConnections:
      return "The server has no free connection slots: lower pool sizes elsewhere or raise "
             "max_connections; pgvigil backs off.";
    case ErrorKind::kAdminShutdown:
      return "The server is shutting down, restarting or starting up (on Neon: the compute was "
             "suspended or restarted); pgvigil reconnects.";
    case ErrorKind::kServerError:
      return "";
    case ErrorKind::kNeonWaking:
      return "The Neon compute is waking up; pgvigil retries.";
    case ErrorKind::kNeonQuota:
      return "The Neon project exceeded a quota or the endpoint is unavailable: check the plan "
             "and limits in the Neon console.";
    case ErrorKind::kNeonDisabled:
      return "The Neon endpoint is disabled: enable it in the Neon console.";
    case ErrorKind::kNeonNotFound:
      return "The Neon endpoint does not exist: check the host name in the database URL.";
    case ErrorKind::kNeonSni:
      return "Neon cannot tell the endpoint from the connection: use sslmode=require with a "
             "libpq that sends SNI, or add options=endpoint%3D<endpoint-id> to the URL.";
    case ErrorKind::kProtocol:
      return "The peer does not speak the PostgreSQL protocol: check that host and port point at "
             "PostgreSQL (or PgBouncer), not another service.";
    case ErrorKind::kConfig:
      return "The connection parameters are invalid: fix the database URL.";
    case ErrorKind::kUnknown:
      return "";
  }
  return "";
}

namespace {
constexpr size_t kMaxMessage = 512;
}  // namespace

std::string FoldMessage(std::string_view text) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    // An indented line continues the previous sentence; a new line starts another message.
    bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty()) continue;
    if (!out.empty()) out += continuation ? " " : "; ";
    out += line;
  }
  // "FATAL:  password ..." has a double space after the severity.
  for (size_t p; (p = out.find(":  ")) != std::string::npos;) out.erase(p + 1, 1);
  return out;
}

std::string ReportedMessage(std::string text, const std::vector<std::string>& secrets) {
  text = ScrubSecrets(std::move(text), secrets);
  if (text.size() > kMaxMessage) {
    text.resize(kMaxMessage - 3);
    text += "...";
  }
  return text;
}

}  // namespace pgvigil
