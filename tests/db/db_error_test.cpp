#include "db/db_error.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace pgvigil {
namespace {

struct Case {
  const char* sqlstate;
  const char* message;
  ErrorKind kind;
};

TEST_CASE("ClassifyError: SQLSTATE first, then libpq and Neon proxy texts", "[db][error]") {
  const Case cases[] = {
      // SQLSTATE wins over the text.
      {"28P01", "password authentication failed for user \"vigil\"", ErrorKind::kAuth},
      {"28000", "no pg_hba.conf entry for host \"10.0.0.1\"", ErrorKind::kAuth},
      {"3D000", "database \"nope\" does not exist", ErrorKind::kDatabaseMissing},
      {"53300", "sorry, too many clients already", ErrorKind::kTooManyConnections},
      {"57P01", "terminating connection due to administrator command", ErrorKind::kAdminShutdown},
      {"57P02", "terminating connection due to crash of another server process",
       ErrorKind::kAdminShutdown},
      {"57P03", "the database system is starting up", ErrorKind::kAdminShutdown},
      {"08006", "connection failure", ErrorKind::kReset},
      {"08P01", "invalid frontend message type 0", ErrorKind::kProtocol},
      {"42601", "syntax error at or near \"SELEC\"", ErrorKind::kServerError},
      {"57014", "canceling statement due to statement timeout", ErrorKind::kServerError},
      // A statement error that mentions connection words stays a statement error.
      {"42703", "column \"ssl\" does not exist", ErrorKind::kServerError},
      {"42703", "column \"certificate\" does not exist", ErrorKind::kServerError},
      {"53100", "could not write to file: Disk quota exceeded", ErrorKind::kServerError},
      // libpq texts without SQLSTATE (connect failures).
      {"",
       "connection to server at \"127.0.0.1\", port 1 failed: Connection refused Is the server "
       "running on that host and accepting TCP/IP connections?",
       ErrorKind::kRefused},
      {"",
       "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or directory",
       ErrorKind::kRefused},
      {"", "could not translate host name \"db.example\" to address: Name or service not known",
       ErrorKind::kDns},
      {"",
       "server closed the connection unexpectedly This probably means the server terminated "
       "abnormally",
       ErrorKind::kReset},
      {"", "SSL SYSCALL error: EOF detected", ErrorKind::kReset},
      {"", "server does not support SSL, but SSL was required", ErrorKind::kTls},
      {"", "SSL error: certificate verify failed", ErrorKind::kTls},
      {"",
       "connection to server at \"h\", port 5432 failed: FATAL: password authentication "
       "failed for user \"vigil\"",
       ErrorKind::kAuth},
      {"", "FATAL: no pg_hba.conf entry for host \"1.2.3.4\", user \"x\", database \"y\"",
       ErrorKind::kAuth},
      {"", "FATAL: role \"ghost\" does not exist", ErrorKind::kAuth},
      {"", "FATAL: database \"nope\" does not exist", ErrorKind::kDatabaseMissing},
      {"", "FATAL: sorry, too many clients already", ErrorKind::kTooManyConnections},
      {"",
       "FATAL: remaining connection slots are reserved for non-replication superuser "
       "connections",
       ErrorKind::kTooManyConnections},
      {"", "FATAL: the database system is shutting down", ErrorKind::kAdminShutdown},
      {"", "timeout expired", ErrorKind::kTimeout},
      {"", "connection to 10.0.0.1:5432 timed out (connect deadline passed)", ErrorKind::kTimeout},
      {"", "invalid connection option \"foo\"", ErrorKind::kConfig},
      {"", "invalid sslmode value: \"sometimes\"", ErrorKind::kConfig},
      // Not PostgreSQL on the other end.
      {"", "received invalid response to SSL negotiation: H", ErrorKind::kProtocol},
      {"", "expected authentication request from server, but received H", ErrorKind::kProtocol},
      // Neon's proxy (often reported with XX000).
      {"XX000", "Couldn't connect to compute node", ErrorKind::kNeonWaking},
      {"", "ERROR: Couldn't connect to compute node", ErrorKind::kNeonWaking},
      {"XX000", "Too many database connection attempts, please try again later",
       ErrorKind::kTooManyConnections},
      {"XX000", "The endpoint is disabled", ErrorKind::kNeonDisabled},
      {"", "ERROR: endpoint is disabled", ErrorKind::kNeonDisabled},
      {"XX000", "Endpoint cannot be found", ErrorKind::kNeonNotFound},
      {"XX000",
       "The requested endpoint could not be found, or you don't have access to it. Please check "
       "the provided ID and try again.",
       ErrorKind::kNeonNotFound},
      {"XX000", "The endpoint is temporarily unavailable", ErrorKind::kNeonQuota},
      {"XX000", "Your account or project has exceeded the compute time quota.",
       ErrorKind::kNeonQuota},
      {"",
       "ERROR: The endpoint ID is not specified. Either please upgrade the postgres client "
       "library (libpq) for SNI support or pass the endpoint ID (first part of the domain name) "
       "as a parameter: '?options=endpoint%3D<endpoint-id>'.",
       ErrorKind::kNeonSni},
      {"XX000", "some internal error", ErrorKind::kServerError},
      {"", "something nobody has seen before", ErrorKind::kUnknown},
  };
  for (const Case& c : cases) {
    DbError e = ClassifyError(c.sqlstate, c.message);
    INFO(c.sqlstate << " | " << c.message);
    CHECK(ErrorKindName(e.kind) == ErrorKindName(c.kind));
    CHECK(e.sqlstate == c.sqlstate);
  }
}

TEST_CASE("ClassifyError keeps the message on one line without trailing newline", "[db][error]") {
  DbError e = ClassifyError("", "server closed the connection unexpectedly\n");
  CHECK(e.message == "server closed the connection unexpectedly");
}

TEST_CASE("DbError predicates and hints", "[db][error]") {
  auto of = [](ErrorKind k) { return DbError{k, "", ""}; };
  for (ErrorKind k :
       {ErrorKind::kTimeout, ErrorKind::kRefused, ErrorKind::kReset, ErrorKind::kDns,
        ErrorKind::kTooManyConnections, ErrorKind::kAdminShutdown, ErrorKind::kNeonWaking}) {
    INFO(ErrorKindName(k));
    CHECK(of(k).Transient());
    CHECK_FALSE(of(k).Misconfiguration());
    CHECK(of(k).ConnectionLost());
    CHECK_FALSE(of(k).Hint().empty());
  }
  for (ErrorKind k : {ErrorKind::kAuth, ErrorKind::kDatabaseMissing, ErrorKind::kTls,
                      ErrorKind::kNeonQuota, ErrorKind::kNeonDisabled, ErrorKind::kNeonNotFound,
                      ErrorKind::kNeonSni, ErrorKind::kProtocol, ErrorKind::kConfig}) {
    INFO(ErrorKindName(k));
    CHECK_FALSE(of(k).Transient());
    CHECK(of(k).Misconfiguration());
    CHECK_FALSE(of(k).Hint().empty());
  }
  CHECK_FALSE(of(ErrorKind::kServerError).ConnectionLost());
  CHECK_FALSE(of(ErrorKind::kServerError).Transient());
  CHECK_FALSE(of(ErrorKind::kServerError).Misconfiguration());
}

TEST_CASE("ErrorKindName is stable lower_snake_case", "[db][error]") {
  CHECK(ErrorKindName(ErrorKind::kTimeout) == "timeout");
  CHECK(ErrorKindName(ErrorKind::kDatabaseMissing) == "database_missing");
  CHECK(ErrorKindName(ErrorKind::kTooManyConnections) == "too_many_connections");
  CHECK(ErrorKindName(ErrorKind::kNeonWaking) == "neon_waking");
  CHECK(ErrorKindName(ErrorKind::kNeonNotFound) == "neon_not_found");
  CHECK(ErrorKindName(ErrorKind::kUnknown) == "unknown");
}

}  // namespace
}  // namespace pgvigil
