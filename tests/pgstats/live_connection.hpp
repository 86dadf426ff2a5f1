#pragma once
// A connection to the harness's PostgreSQL for the pgstats live tests (the collector and the
// window tests), 10 s to connect; throws when it cannot. Test thread only.
#include <chrono>
#include <stdexcept>
#include <string>

#include "config/database_url.hpp"
#include "db/connection.hpp"
#include "support/pg_server.hpp"

namespace pgvigil {

inline Connection OpenStatsSession(const test::PgServer& pg) {
  ParsedUrl parsed = ParseDatabaseUrl(pg.Url());
  if (!parsed) throw std::runtime_error("bad test URL: " + parsed.error().message);
  auto opened =
      Connection::Open(*parsed, std::chrono::steady_clock::now() + std::chrono::seconds(10));
  if (!opened.has_value()) throw std::runtime_error("connect failed: " + opened.error().message);
  return std::move(*opened);
}

}  // namespace pgvigil
