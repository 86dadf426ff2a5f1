#pragma once
// Database URL handling: accepts what users paste (postgres://, postgresql://, SQLAlchemy's
// postgresql+asyncpg:// / +psycopg2:// / +psycopg://, and libpq key=value strings), validates it
// with libpq's own parser and yields keyword/value pairs for PQconnectStartParams.
// Pure functions, thread-safe. Nothing here ever returns or logs the password.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.hpp"

namespace pgvigil {

struct ConnParams {
  // libpq keywords and values, in order, without empty values. Includes "password" when given.
  std::vector<std::pair<std::string, std::string>> params;

  // Value of a keyword, or "" when absent.
  std::string Get(std::string_view keyword) const;
  void Set(std::string keyword, std::string value);  // replaces or appends
  std::string Host() const;      // first host or hostaddr; "" means libpq's default (socket)
  int Port() const;              // first port, 5432 when absent or unparsable
  std::string Database() const;  // dbname, else user, else ""
  std::string User() const;
  // A display form safe for logs, /health and spans: "postgresql://user@host:port/db?sslmode=..."
  // with no password (and no other secret keyword such as sslpassword).
  std::string Redacted() const;
  // Secret values (password, sslpassword) so callers can scrub any text libpq produced.
  std::vector<std::string> Secrets() const;

  bool operator==(const ConnParams&) const = default;
};

struct UrlError {
  std::string message;  // names the problem and the fix; never contains the password
};

// Parses and normalizes. SQLAlchemy driver suffixes are dropped; asyncpg's ssl=require|true
// becomes sslmode=require (ssl=disable|false -> sslmode=disable, prefer/allow/verify-ca/verify-full
// map to the same sslmode). Parameters libpq rejects give an error naming the parameter.
// Returns the parameters or an error.
using ParsedUrl = Result<ConnParams, UrlError>;
ParsedUrl ParseDatabaseUrl(std::string_view url);

// Splits a libpq list value (host, hostaddr, port) at commas, keeping empty items: "a,,b" has 3.
std::vector<std::string> SplitCommas(const std::string& s);

// Replaces every secret (raw and percent-encoded) in `text` with "***"; a secret shorter than 8
// characters only where it stands as a word of its own (never inside "expected" for "x").
std::string ScrubSecrets(std::string text, const std::vector<std::string>& secrets);

// Best-effort: likely passwords in arbitrary text (the userinfo of "scheme://user:pass@" URLs and
// password=/sslpassword= values), for scrubbing messages about text that did not parse.
std::vector<std::string> GuessSecretsInText(std::string_view text);

}  // namespace pgvigil
