// End-to-end tests of the pgvigil binary against real PostgreSQL 15 and PgBouncer servers
// started on loopback by the harness. Each test owns its servers.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {}  // namespace

TEST_CASE("healthy path: probes, endpoints and metrics", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));

  CHECK(agent.Get("/livez").status == 200);
  CHECK(agent.Get("/readyz").status == 200);
  CHECK(agent.Get("/startupz").status == 200);
  CHECK(agent.Get("/health/db").status == 200);

  json h = HealthOf(agent);
  CHECK(h["status"] == "ok");
  CHECK(h["database"]["state"] == "up");
  CHECK(h["database"]["last_latency_ms"].is_number());
  CHECK(h["pool"]["size"] == 1);
  CHECK(h["pool"]["opened_total"] == 1);
  CHECK(h["version"].is_string());

  auto m = agent.Get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(MetricValue(m.body, "pg_up") == 1.0);
  CHECK(MetricValue(m.body, "pgvigil_db_state{state=\"up\"}") == 1.0);
  CHECK(MetricValue(m.body, "pgvigil_db_state{state=\"down\"}") == 0.0);
  CHECK(MetricValue(m.body, "pgvigil_probes_total{outcome=\"ok\"}").value_or(0) >= 1);
  CHECK(m.body.find("process_resident_memory_bytes") != std::string::npos);
  CHECK(m.body.find("pgvigil_build_info") != std::string::npos);

  // The metrics output is valid for Prometheus.
  CHECK(PromtoolRemarks(m.body).empty());

  // Methods and paths.
  CHECK(agent.Request("POST", "/livez").status == 405);
  CHECK(agent.Request("HEAD", "/livez").status == 200);
  CHECK(agent.Get("/nope").status == 404);

  // A scrape runs no SQL: the probe's counter on the server moves only with the probe timer.
  const std::string count_sql =
      "SELECT coalesce(sum(calls),0) FROM pg_stat_statements WHERE query LIKE '%pgvigil%'";
  std::this_thread::sleep_for(100ms);
  const long before = std::stol(pg.Psql(count_sql));
  for (int i = 0; i < 50; ++i) agent.Get("/metrics");
  const long after = std::stol(pg.Psql(count_sql));
  CHECK(after - before <= 2);  // at most the probes that ran meanwhile
}

TEST_CASE("database down at start, then started: becomes up", "[live]") {
  PgServerOptions options;
  options.start = false;
  PgServer pg(options);
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("down", 10s));
  CHECK(agent.Get("/livez").status == 200);
  CHECK(agent.Get("/readyz").status == 200);  // readiness does not follow the DB by default
  CHECK(agent.Get("/health/db").status == 503);
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "refused");
  CHECK(h["status"] == "unavailable");

  pg.Start();
  const auto started = std::chrono::steady_clock::now();
  // Usable (/health/db 200; "degraded" while failed probes remain in the 5-probe window) within
  // one probe interval plus the backoff cap and slack; "up" once that window is clean.
  REQUIRE(Eventually([&] { return agent.Get("/health/db").status == 200; }, 10s));
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  REQUIRE(agent.WaitState("up", 10s));
  CHECK(std::chrono::steady_clock::now() - started < 5s);  // 5 probes × 600 ms, plus slack
  CHECK(agent.Get("/health/db").status == 200);
}

TEST_CASE("frozen server: probe fails at its deadline, HTTP keeps answering", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));

  pg.Freeze();
  // Two failures at 500ms deadlines, 600ms apart: down within a few seconds.
  const bool went_down = agent.WaitState("down", 8s);
  // While the scheduler sits in a call to a frozen server, the HTTP side still answers fast.
  auto live = agent.Get("/livez");
  auto metrics = agent.Get("/metrics");
  json h = HealthOf(agent);
  pg.Thaw();
  REQUIRE(went_down);
  CHECK(live.status == 200);
  CHECK(metrics.status == 200);
  CHECK(live.elapsed < 200ms);
  CHECK(metrics.elapsed < 200ms);
  CHECK(h["database"]["error_kind"] == "timeout");
  CHECK(agent.Metric("pgvigil_probes_total{outcome=\"timeout\"}").value_or(0) >= 1);

  REQUIRE(agent.WaitState("up", 10s));
}

TEST_CASE("backend terminated: reconnects and counts it", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  pg.Psql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgvigil'");
  REQUIRE(Eventually(
      [&] {
        auto h = HealthOf(agent);
        return h["pool"]["opened_total"] == 2 && h["database"]["state"] != "down";
      },
      10s));
  json h = HealthOf(agent);
  CHECK(h["pool"]["closed_total"]["broken"] == 1);
  CHECK(agent.WaitState("up", 5s));
  CHECK(agent.Metric("pgvigil_pool_connections_opened_total{pool=\"main\"}").value_or(0) == 2);
}

TEST_CASE("wrong password: misconfigured, no reconnect storm, no secret leaked", "[live]") {
  PgServer pg;
  const std::string wrong = "Wr0ng-Secret-42";
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.UrlWithPassword(wrong)));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("misconfigured", 10s));
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "auth");
  CHECK(agent.Get("/health/db").status == 503);
  CHECK(agent.Get("/livez").status == 200);

  // With misconfigured_backoff = 30s, probes every 600ms make no new connection attempts.
  std::this_thread::sleep_for(2s);
  CHECK(agent.Metric("pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"auth\"}") == 1.0);

  const std::string all = agent.Output() + agent.Get("/health").body + agent.Get("/metrics").body;
  CHECK(all.find(wrong) == std::string::npos);
  CHECK(all.find("Wr0ng") == std::string::npos);
}

TEST_CASE("works through PgBouncer in transaction mode", "[live]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(bouncer.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  std::this_thread::sleep_for(2s);  // several probes through the pooler
  CHECK(agent.State() == "up");
  CHECK(agent.Metric("pgvigil_probes_total{outcome=\"ok\"}").value_or(0) >= 3);
}

TEST_CASE("SIGTERM: readiness fails, process exits 0 within the bound", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  const auto start = std::chrono::steady_clock::now();
  agent.Signal(SIGTERM);
  auto code = agent.WaitExit(5s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK(agent.Output().find("msg=stopped") != std::string::npos);
}

TEST_CASE("SIGTERM while the server is frozen still exits within the bound", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  pg.Freeze();
  std::this_thread::sleep_for(400ms);
  const auto start = std::chrono::steady_clock::now();
  agent.Signal(SIGTERM);
  auto code = agent.WaitExit(5s);
  pg.Thaw();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(std::chrono::steady_clock::now() - start < 3500ms);
}

TEST_CASE("the password never appears in logs, /health, /metrics or config errors", "[live]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  pg.Psql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgvigil'");
  std::this_thread::sleep_for(1s);
  const std::string secret = kPassword;
  const std::string all = agent.Output() + agent.Get("/health").body + agent.Get("/metrics").body;
  CHECK(all.find(secret) == std::string::npos);
  CHECK(all.find("S3cr3t") == std::string::npos);

  // A URL with an unknown parameter is rejected with its name, without the password.
  auto r = RunPgvigil({"--check-config"}, {{"PGVIGIL_DATABASE_URL", pg.Url() + "?bogus_param=1"}});
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("bogus_param") != std::string::npos);
  CHECK(r.output.find("S3cr3t") == std::string::npos);
}
