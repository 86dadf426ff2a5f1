// Connection against real servers (PostgreSQL from the harness, fake TCP peers) [live].
#include "db/connection.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

#include "support/pg_server.hpp"
#include "support/tcp_listener.hpp"
#include "support/url_params.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::kPassword;
using test::PgServer;
using test::TcpListener;

std::string LocalUrl(int port, const std::string& extra = "") {
  return std::string("postgresql://") + test::kUser + ":pw@127.0.0.1:" + std::to_string(port) +
         "/postgres" + extra;
}

void CheckNoSecret(const std::string& message) {
  CHECK(message.find(kPassword) == std::string::npos);
  CHECK(message.find("S3cr3t") == std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
}

TEST_CASE("Connection: open, exec with parameters, typed accessors [live]", "[db][live]") {
  PgServer pg;
  auto opened = Connection::Open(test::UrlParams(pg.Url()), Clock::now() + 5s);
  REQUIRE(opened.has_value());
  Connection& c = *opened;
  CHECK_FALSE(c.broken());
  CHECK(c.backend_pid() > 0);
  CHECK(c.server_version() >= 150000);
  CHECK(c.parameter("server_encoding") == "UTF8");
  CHECK(c.parameter("no_such_parameter").empty());

  auto r = c.Exec("SELECT $1::int + 1 AS n, $2::text AS s, NULL::int AS z, 2.5::float8 AS d",
                  {"41", "hi"}, Clock::now() + 5s);
  REQUIRE(r.has_value());
  const QueryResult& q = *r;
  CHECK(q.Rows() == 1);
  CHECK(q.Columns() == 4);
  CHECK(q.ColumnName(0) == "n");
  CHECK(q.ColumnIndex("s") == 1);
  CHECK(q.ColumnIndex("missing") == -1);
  CHECK(q.Int(0, 0) == 42);
  CHECK(q.Text(0, 1) == "hi");
  CHECK(q.IsNull(0, 2));
  CHECK(q.Text(0, 2).empty());
  CHECK_FALSE(q.Int(0, 2).has_value());
  CHECK_FALSE(q.Int(0, 1).has_value());
  CHECK(q.Double(0, 3) == 2.5);

  auto empty = c.Exec("", Clock::now() + 5s);
  CHECK(empty.has_value());

  // A statement error leaves the session usable.
  auto bad = c.Exec("SELEC 1", Clock::now() + 5s);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().kind == ErrorKind::kServerError);
  CHECK(bad.error().sqlstate == "42601");
  CHECK_FALSE(bad.error().ConnectionLost());
  CHECK_FALSE(c.broken());
  CHECK(c.Exec("SELECT 1", Clock::now() + 5s).has_value());

  // application_name from ConnParams reaches the server.
  ConnParams p = test::UrlParams(pg.Url());
  p.Set("application_name", "pgvigil-test");
  auto named = Connection::Open(p, Clock::now() + 5s);
  REQUIRE(named.has_value());
  auto app = named->Exec("SELECT current_setting('application_name')", Clock::now() + 5s);
  REQUIRE(app.has_value());
  CHECK(app->Text(0, 0) == "pgvigil-test");
}

TEST_CASE(
    "Connection: wrong password (kAuth, no password in the message), missing database, refused "
    "port [live]",
    "[db][live]") {
  PgServer pg;
  auto opened = Connection::Open(test::UrlParams(pg.UrlWithPassword(std::string(kPassword) + "x")),
                                 Clock::now() + 5s);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().kind == ErrorKind::kAuth);
  CHECK(opened.error().Misconfiguration());
  CHECK(opened.error().message.find("password authentication failed") != std::string::npos);
  CheckNoSecret(opened.error().message);

  // A one-letter wrong password: the message is classified before it is scrubbed, and the
  // scrubber leaves "failed" alone (it was "fail***d" and classified as unknown).
  auto one_letter = Connection::Open(test::UrlParams(pg.UrlWithPassword("e")), Clock::now() + 5s);
  REQUIRE_FALSE(one_letter.has_value());
  CHECK(one_letter.error().kind == ErrorKind::kAuth);
  CHECK(one_letter.error().message.find("password authentication failed") != std::string::npos);

  auto missing = Connection::Open(test::UrlParams(pg.Url("no_such_db")), Clock::now() + 5s);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == ErrorKind::kDatabaseMissing);
  CheckNoSecret(missing.error().message);

  auto refused =
      Connection::Open(test::UrlParams(LocalUrl(test::FreeTcpPort())), Clock::now() + 5s);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::kRefused);
  CHECK(refused.error().Transient());
}

TEST_CASE("Connection: a frozen server costs at most the deadline [live]", "[db][live]") {
  PgServer pg;
  auto opened = Connection::Open(test::UrlParams(pg.Url()), Clock::now() + 5s);
  REQUIRE(opened.has_value());
  Connection& c = *opened;
  REQUIRE(c.Exec("SELECT 1", Clock::now() + 5s).has_value());

  pg.Freeze();
  auto t0 = Clock::now();
  auto r = c.Exec("SELECT 1", t0 + 500ms);
  auto elapsed = Clock::now() - t0;
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::kTimeout);
  CHECK(elapsed >= 450ms);
  CHECK(elapsed < 500ms + 1s);
  CHECK(c.broken());
  // A broken connection refuses further work at once.
  auto again = c.Exec("SELECT 1", Clock::now() + 5s);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().ConnectionLost());

  t0 = Clock::now();
  auto frozen_open = Connection::Open(test::UrlParams(pg.Url()), t0 + 500ms);
  elapsed = Clock::now() - t0;
  REQUIRE_FALSE(frozen_open.has_value());
  CHECK(frozen_open.error().kind == ErrorKind::kTimeout);
  CHECK(elapsed < 500ms + 1s);
  pg.Thaw();
}

TEST_CASE("Connection: a peer that accepts and never speaks times out", "[db]") {
  TcpListener hole(TcpListener::Mode::kBlackhole);
  auto t0 = Clock::now();
  auto opened = Connection::Open(test::UrlParams(LocalUrl(hole.port())), t0 + 400ms);
  auto elapsed = Clock::now() - t0;
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().kind == ErrorKind::kTimeout);
  CHECK(elapsed >= 350ms);
  CHECK(elapsed < 400ms + 1s);
}

TEST_CASE("Connection: a peer that is not PostgreSQL gives a protocol error", "[db]") {
  for (const char* extra : {"", "?sslmode=disable"}) {
    TcpListener http(TcpListener::Mode::kGarbage);
    auto opened =
        Connection::Open(test::UrlParams(LocalUrl(http.port(), extra)), Clock::now() + 3s);
    INFO("extra=" << extra);
    REQUIRE_FALSE(opened.has_value());
    INFO(opened.error().message);
    CHECK(opened.error().kind == ErrorKind::kProtocol);
  }
  TcpListener closer(TcpListener::Mode::kCloseImmediately);
  auto opened = Connection::Open(test::UrlParams(LocalUrl(closer.port(), "?sslmode=disable")),
                                 Clock::now() + 3s);
  REQUIRE_FALSE(opened.has_value());
  INFO(opened.error().message);
  CHECK((opened.error().kind == ErrorKind::kReset || opened.error().kind == ErrorKind::kProtocol));
}

TEST_CASE("Connection: a terminated backend is a lost connection [live]", "[db][live]") {
  PgServer pg;
  auto opened = Connection::Open(test::UrlParams(pg.Url()), Clock::now() + 5s);
  REQUIRE(opened.has_value());
  Connection& c = *opened;
  // The timeout form waits until the backend is gone: its FATAL sits in our socket, unread.
  pg.Psql("SELECT pg_terminate_backend(" + std::to_string(c.backend_pid()) + ", 5000)");
  auto r = c.Exec("SELECT 1", Clock::now() + 5s);
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().message);
  CHECK(r.error().ConnectionLost());
  // The reason the server gave while the session was idle is reported, not a failed write.
  CHECK(r.error().kind == ErrorKind::kAdminShutdown);
  CHECK(r.error().sqlstate == "57P01");
  CHECK_THAT(r.error().message, Catch::Contains("terminating connection due to administrator"));
  CHECK(c.broken());
  auto again = c.Exec("SELECT 1", Clock::now() + 5s);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().ConnectionLost());
}

TEST_CASE("Connection: bad parameters are a config error", "[db]") {
  ConnParams p;
  p.params = {{"host", "127.0.0.1"}, {"no_such_option", "1"}};
  auto opened = Connection::Open(p, Clock::now() + 1s);
  REQUIRE_FALSE(opened.has_value());
  CHECK(opened.error().kind == ErrorKind::kConfig);
}

TEST_CASE("Connection: a statement comment tags every statement until cleared [live]",
          "[db][live]") {
  PgServer pg;
  auto opened = Connection::Open(test::UrlParams(pg.Url()), Clock::now() + 5s);
  REQUIRE(opened.has_value());
  Connection& conn = *opened;
  conn.SetStatementComment(
      "/*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/");
  // A trailing line comment in the statement must not swallow the tag.
  auto tagged = conn.Exec("SELECT current_query() -- trailing", Clock::now() + 5s);
  REQUIRE(tagged.has_value());
  CHECK(tagged->Text(0, 0).find("traceparent='00-0af7651916cd43dd8448eb211c80319c") !=
        std::string::npos);
  conn.SetStatementComment("");
  auto plain = conn.Exec("SELECT current_query()", Clock::now() + 5s);
  REQUIRE(plain.has_value());
  CHECK(plain->Text(0, 0) == "SELECT current_query()");
}

}  // namespace
}  // namespace pgvigil
