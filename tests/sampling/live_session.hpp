#pragma once
// Sessions for the sampling live tests: a connection to the harness's PostgreSQL under a given
// application_name, and a statement that must succeed. Test thread only (Catch2 assertions).
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "config/database_url.hpp"
#include "db/connection.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {

inline Connection Open(const test::PgServer& pg, const std::string& app,
                       const std::string& db = "postgres") {
  ParsedUrl parsed = ParseDatabaseUrl(pg.Url(db));
  REQUIRE(parsed.has_value());
  parsed->Set("application_name", app);
  auto opened =
      Connection::Open(*parsed, std::chrono::steady_clock::now() + std::chrono::seconds(10));
  REQUIRE(opened.has_value());
  return std::move(*opened);
}

inline void Exec(Connection& c, const std::string& sql) {
  auto r = c.Exec(sql, std::chrono::steady_clock::now() + std::chrono::seconds(10));
  INFO(sql << ": " << (r ? std::string() : r.error().message));
  REQUIRE(r.has_value());
}

}  // namespace pgvigil
