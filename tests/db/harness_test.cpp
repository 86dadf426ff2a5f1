// Proves the live-server harness works: PostgreSQL via psql and libpq, PgBouncer, freeze/kill.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "support/pg_server.hpp"

namespace pgvigil::test {
namespace {

std::string QueryOne(const std::string& url, const char* sql, int connect_timeout_s = 5) {
  std::string conninfo = url + "?connect_timeout=" + std::to_string(connect_timeout_s);
  PGconn* c = PQconnectdb(conninfo.c_str());
  std::string out;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult* r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) out = PQgetvalue(r, 0, 0);
    PQclear(r);
  } else {
    out = std::string("error: ") + PQerrorMessage(c);
  }
  PQfinish(c);
  return out;
}

TEST_CASE("harness: PgServer starts, psql and the TCP URL work [live]", "[live][harness]") {
  PgServer pg;
  REQUIRE(pg.running());
  CHECK(pg.Psql("SELECT 1") == "1");
  CHECK(pg.Psql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == "1");
  CHECK(pg.Psql("SHOW pg_stat_statements.track") == "all");
  CHECK(QueryOne(pg.Url(), "SELECT current_user") == kUser);
  CHECK(QueryOne(pg.Url(), "SELECT pg_has_role('vigil', 'pg_monitor', 'member')::text") == "true");
  CHECK(QueryOne(pg.UrlWithPassword("wrong"), "SELECT 1").find("password authentication failed") !=
        std::string::npos);
  CHECK_THROWS(pg.Psql("SELECT * FROM no_such_table"));
}

TEST_CASE("harness: Freeze/Thaw, Stop/Start and Kill/Start [live]", "[live][harness]") {
  PgServer pg;
  pg.Freeze();
  auto t0 = std::chrono::steady_clock::now();
  std::string r = QueryOne(pg.Url(), "SELECT 1", 2);  // blocks until connect_timeout
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(r.starts_with("error:"));
  CHECK(elapsed >= std::chrono::seconds(1));
  pg.Thaw();
  CHECK(pg.Psql("SELECT 4") == "4");

  pg.Stop();
  CHECK_FALSE(pg.running());
  pg.Start();
  CHECK(pg.Psql("SELECT 2") == "2");
  int pm = pg.postmaster_pid();
  pg.Kill();
  CHECK_FALSE(pg.running());
  pg.Start();
  CHECK(pg.postmaster_pid() != pm);
  CHECK(QueryOne(pg.Url(), "SELECT 3") == "3");
}

TEST_CASE("harness: PgBouncer in transaction mode [live]", "[live][harness]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  CHECK(QueryOne(bouncer.Url(), "SELECT 5") == "5");
  CHECK(QueryOne(bouncer.Url(), "SELECT current_user") == kUser);
}

}  // namespace
}  // namespace pgvigil::test
