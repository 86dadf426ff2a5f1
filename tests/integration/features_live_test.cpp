// End-to-end tests of the optional parts through the real binary: traces (/traces and OTLP
// export to a loopback receiver), slow-query sampling (/queries), and Neon's suspend policy
// against the Neon simulator (a proxy that really stops PostgreSQL, plus a fake control plane).
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/agent_process.hpp"
#include "support/neon_sim.hpp"
#include "support/otlp_receiver.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string Config(const std::string& extra) {
  return R"([database]
url_env = "TEST_DB_URL"
connect_timeout = "3s"

[pool]
backoff_initial = "100ms"
backoff_max = "500ms"

[probe]
interval = "500ms"
timeout = "400ms"
failure_threshold = 2

[http]
listen = "127.0.0.1:{port}"

[log]
level = "debug"

)" + extra;
}

json Get(const AgentProcess& a, const std::string& path) {
  auto r = a.Get(path);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

std::vector<json> Spans(const json& doc) {
  std::vector<json> out;
  for (const auto& rs : doc["resourceSpans"])
    for (const auto& ss : rs["scopeSpans"])
      for (const auto& sp : ss["spans"]) out.push_back(sp);
  return out;
}

std::string Attr(const json& span, const std::string& key) {
  for (const auto& a : span["attributes"]) {
    if (a["key"] == key) {
      const auto& v = a["value"];
      if (v.contains("stringValue")) return v["stringValue"];
      if (v.contains("intValue")) return v["intValue"];
      if (v.contains("boolValue")) return v["boolValue"].get<bool>() ? "true" : "false";
    }
  }
  return "";
}

// A [neon] section for a NeonSim with its control-plane API (polled every second), Neon mode
// forced on (the sim listens on 127.0.0.1, without TLS); `extra` adds keys.
std::string NeonApiSection(const NeonSim& sim, const std::string& extra = "") {
  const NeonSimOptions& o = sim.options();
  return "[neon]\nmode = \"on\"\nallow_insecure_tls = true\napi_url = \"" + sim.ApiUrl() +
         "\"\nproject_id = \"" + o.project_id + "\"\nendpoint_id = \"" + o.endpoint_id +
         "\"\napi_poll_interval = \"1s\"\n" + extra;
}

}  // namespace

TEST_CASE("traces: probe spans with semconv attributes, served and exported over OTLP", "[live]") {
  PgServer pg;
  OtlpReceiver collector;
  AgentProcess agent(Config("[tracing]\notlp_endpoint = \"" + collector.Endpoint() +
                            "\"\nexport_interval = \"300ms\"\n"),
                     {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  REQUIRE(Eventually([&] { return Spans(Get(agent, "/traces")).size() >= 4; }, 10s));

  json doc = Get(agent, "/traces");
  bool saw_probe = false, saw_select = false, saw_connect = false;
  for (const auto& sp : Spans(doc)) {
    CHECK(sp["traceId"].get<std::string>().size() == 32);
    CHECK(sp["spanId"].get<std::string>().size() == 16);
    CHECK(sp["kind"].is_number_integer());
    CHECK(sp["startTimeUnixNano"].is_string());
    if (sp["name"] == "pgvigil.probe") saw_probe = true;
    if (Attr(sp, "db.operation.name") == "SELECT") {
      saw_select = true;
      CHECK(sp["kind"] == 3);
      CHECK(Attr(sp, "db.system.name") == "postgresql");
      CHECK(Attr(sp, "db.namespace") == "postgres");
      CHECK(Attr(sp, "server.address") == "127.0.0.1");
      CHECK(Attr(sp, "server.port") == std::to_string(pg.port()));
    }
    if (Attr(sp, "db.operation.name") == "connect") saw_connect = true;
  }
  CHECK(saw_probe);
  CHECK(saw_select);
  CHECK(saw_connect);

  // The probe's SQL carries its traceparent, so its session can be matched in pg_stat_activity.
  CHECK(Eventually(
      [&] {
        return pg.Psql(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgvigil' "
                   "AND query LIKE '%traceparent=''00-%'") != "0";
      },
      5s));

  // The collector got OTLP JSON.
  REQUIRE(collector.WaitForRequests(1, 10s));
  auto req = collector.Requests().front();
  CHECK(req.path == "/v1/traces");
  CHECK(req.Header("Content-Type") == "application/json");
  json body = json::parse(req.body);
  CHECK(!Spans(body).empty());

  // A failing database gives ERROR spans with the error type.
  pg.Stop();
  REQUIRE(Eventually(
      [&] {
        auto d = json::parse(agent.Get("/traces?error=true").body, nullptr, false);
        return !d.is_discarded() && !Spans(d).empty();
      },
      10s));
  auto errors = Spans(json::parse(agent.Get("/traces?error=true").body));
  CHECK(errors.front()["status"]["code"] == 2);
  CHECK(agent.Get("/traces?min_duration=bogus").status == 400);
}

TEST_CASE("a dead OTLP collector leaves probes and /livez untouched", "[live]") {
  PgServer pg;
  OtlpReceiver collector;
  collector.SetDefaultReply(OtlpReply::kHang);
  collector.SetHangFor(20s);
  AgentProcess agent(Config("[tracing]\notlp_endpoint = \"" + collector.Endpoint() +
                            "\"\nexport_interval = \"200ms\"\nexport_timeout = \"10s\"\n"),
                     {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  REQUIRE(collector.WaitForRequests(1, 10s));
  const double before = agent.Metric("pgvigil_probes_total{outcome=\"ok\"}").value_or(0);
  std::this_thread::sleep_for(2s);
  const double after = agent.Metric("pgvigil_probes_total{outcome=\"ok\"}").value_or(0);
  CHECK(after - before >= 3);  // probes every 500ms keep going while the export hangs
  auto live = agent.Get("/livez");
  CHECK(live.status == 200);
  CHECK(live.elapsed < 200ms);
}

TEST_CASE("sampling: /queries shows obfuscated statements and long-running queries", "[live]") {
  PgServer pg;
  OtlpReceiver collector;
  AgentProcess agent(Config("[sampling]\nstatements_interval = \"1s\"\nactivity_interval = "
                            "\"500ms\"\nslow_threshold = \"500ms\"\n[tracing]\notlp_endpoint = \"" +
                            collector.Endpoint() + "\"\nexport_interval = \"300ms\"\n"),
                     {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  // Warm up (a new statement only sets a baseline), then the measured workload.
  pg.Psql("SELECT 'hunter2' AS secret_marker_q, 1");
  std::this_thread::sleep_for(1500ms);
  for (int i = 0; i < 5; ++i) pg.Psql("SELECT 'hunter2' AS secret_marker_q, 1");
  // The sleeper carries its client's trace context the sqlcommenter way.
  const std::string client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string client_span = "00f067aa0ba902b7";
  std::thread sleeper([&] {
    pg.Psql("SELECT pg_sleep(2) /* sleeper_marker */ /*traceparent='00-" + client_trace + "-" +
            client_span + "-01'*/");
  });
  bool statement_seen = false, sleeper_seen = false;
  std::string body;
  Eventually(
      [&] {
        // Keep the workload going: a statement's first sample is only its baseline, and under
        // load the sampler may not have taken one between the warm-up and the calls above.
        if (!statement_seen) pg.Psql("SELECT 'hunter2' AS secret_marker_q, 1");
        body = agent.Get("/queries").body;
        statement_seen = body.find("secret_marker_q") != std::string::npos;
        sleeper_seen = body.find("pg_sleep") != std::string::npos;
        return statement_seen && sleeper_seen;
      },
      15s);
  sleeper.join();
  INFO(body);
  CHECK(statement_seen);
  CHECK(sleeper_seen);
  CHECK(body.find("hunter2") == std::string::npos);
  // The long-running query is also a span, started at its query_start: an INTERNAL child of the
  // activity sampler's span (pgvigil observed it, it did not call it), linked to its client's
  // trace, with no db.* attributes that would make a backend count it as a database call.
  bool observed_span = false;
  auto traces = Spans(Get(agent, "/traces"));
  for (const auto& sp : traces) {
    if (Attr(sp, "pgvigil.observed") == "true" &&
        Attr(sp, "pgvigil.query.text").find("pg_sleep") != std::string::npos) {
      observed_span = true;
      INFO(sp.dump());
      CHECK(sp["name"] == "pgvigil.long_running_query");
      CHECK(sp["kind"] == 1);
      const double start = std::stod(sp["startTimeUnixNano"].get<std::string>());
      const double end = std::stod(sp["endTimeUnixNano"].get<std::string>());
      CHECK(end - start >= 0.5e9);
      REQUIRE(sp.contains("parentSpanId"));
      bool parent_is_sampler = false;
      for (const auto& p : traces) {
        if (p["spanId"] == sp["parentSpanId"]) {
          parent_is_sampler = p["name"] == "pgvigil.sample.activity" && p["kind"] == 1;
        }
      }
      CHECK(parent_is_sampler);
      REQUIRE(sp["links"].size() == 1);
      CHECK(sp["links"][0]["traceId"] == client_trace);
      CHECK(sp["links"][0]["spanId"] == client_span);
      CHECK(Attr(sp, "pgvigil.backend.user") != "");
      for (const auto& a : sp["attributes"]) {
        CHECK(!a["key"].get<std::string>().starts_with("db."));
      }
    }
  }
  CHECK(observed_span);
  // The observation was exported too.
  CHECK(Eventually(
      [&] {
        for (const auto& req : collector.Requests()) {
          if (req.body.find("pgvigil.long_running_query") != std::string::npos) return true;
        }
        return false;
      },
      5s));
  json h = Get(agent, "/health");
  CHECK(h["sampling"]["statements"]["status"] == "ok");
  auto metrics = agent.Get("/metrics").body;
  CHECK(metrics.find("pgvigil_statements_calls_total") != std::string::npos);
  CHECK(metrics.find("pg_stat_database_xact_commit{") != std::string::npos);
}

TEST_CASE("neon.sampling_url: probes through the pooler, sampling on the direct host", "[live]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  AgentProcess agent(Config("[sampling]\nstatements_interval = \"1s\"\nactivity_interval = "
                            "\"500ms\"\nslow_threshold = \"500ms\"\n[stats]\ninterval = "
                            "\"1s\"\n[neon]\nsampling_url = \"" +
                            pg.Url() + "\"\n"),
                     {{"TEST_DB_URL", bouncer.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  // /queries holds the last interval's top statements: keep the workload going until one
  // interval has seen the marker's calls grow.
  std::thread sleeper([&] { pg.Psql("SELECT pg_sleep(2) /* direct_sleeper */"); });
  std::string body;
  const bool seen = Eventually(
      [&] {
        pg.Psql("SELECT 'x' AS direct_marker_q, 1");
        body = agent.Get("/queries").body;
        return body.find("direct_marker_q") != std::string::npos &&
               body.find("pg_sleep") != std::string::npos;
      },
      8s);
  sleeper.join();
  INFO(body);
  CHECK(seen);
  const std::string metrics = agent.Get("/metrics").body;
  INFO(metrics);
  CHECK(MetricValue(metrics, "pgvigil_pool_connections_opened_total{pool=\"main\"}").value_or(0) >=
        1);
  CHECK(MetricValue(metrics, "pgvigil_sampling_pool_connections_opened_total").value_or(0) >= 1);
  CHECK(MetricValue(metrics, "pgvigil_sampling_pool_connections").value_or(0) == 1);
  CHECK(MetricValue(metrics, "pgvigil_pool_connections_opened_total{pool=\"sampling\"}")
            .value_or(0) >= 1);
  CHECK(metrics.find("pg_stat_database_xact_commit{") != std::string::npos);
  CHECK(agent.State() == "up");
  // The stats election runs on the direct session: a real leader, not all_collect.
  const json leader = Get(agent, "/health")["stats_leader"];
  INFO(leader.dump());
  CHECK(leader["role"] == "leader");
  CHECK(MetricValue(metrics, "pgvigil_stats_leader").value_or(-1) == 1);
  // The direct connection carries pgvigil's application_name.
  CHECK(std::stoi(pg.Psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'pgvigil' AND client_port IS NOT NULL")) >= 1);
  CHECK(agent.Output().find(kPassword) == std::string::npos);
}

TEST_CASE("stats election through a transaction pooler: every sidecar collects, /health says why",
          "[live]") {
  PgServer pg;
  PgBouncer bouncer(pg);
  AgentProcess agent(Config("[stats]\ninterval = \"1s\"\n"), {{"TEST_DB_URL", bouncer.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  json leader;
  CHECK(Eventually(
      [&] {
        leader = Get(agent, "/health")["stats_leader"];
        return leader["role"] == "all_collect";
      },
      5s));
  INFO(leader.dump());
  CHECK(leader["collects"] == true);
  CHECK(leader["hint"].get<std::string>().find("neon.sampling_url") != std::string::npos);
  CHECK(MetricValue(agent.Get("/metrics").body, "pgvigil_stats_leader").value_or(-1) == 1);
  // No session lock was left on a server connection PgBouncer shares with others.
  CHECK(std::stoi(pg.Psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")) == 0);
}

TEST_CASE("neon.sampling_url that refuses: probes stay up, sampling paused, no secret leaked",
          "[live]") {
  PgServer pg;
  AgentProcess agent(Config("[sampling]\nstatements_interval = \"1s\"\n[neon]\nsampling_url = \"" +
                            pg.UrlWithPassword("Wr0ng-sampling-pw") + "\"\n"),
                     {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  CHECK(Eventually(
      [&] {
        return agent.Metric("pgvigil_sampling_pool_connect_errors_total{reason=\"auth\"}")
                   .value_or(0) >= 1;
      },
      5s));
  CHECK(Eventually(
      [&] {
        return agent.Output().find("cannot connect to neon.sampling_url") != std::string::npos;
      },
      3s));
  CHECK(agent.State() == "up");
  CHECK(agent.Output().find("Wr0ng-sampling-pw") == std::string::npos);
  CHECK(agent.Get("/metrics").body.find("Wr0ng-sampling-pw") == std::string::npos);
}

TEST_CASE("neon allow_suspend: the compute sleeps, pgvigil stays away, the app wakes it",
          "[live][neon]") {
  PgServer pg;
  NeonSimOptions sim_options;
  sim_options.suspend_timeout = 1500ms;
  sim_options.cold_start_delay = 300ms;
  NeonSim sim(pg, sim_options);
  const std::string neon = NeonApiSection(sim, "suspend_after = \"1s\"\n");
  AgentProcess agent(Config(neon + "[sampling]\nenabled = false\n"),
                     {{"TEST_DB_URL", sim.Url()}, {"NEON_API_KEY", sim_options.api_key}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 15s));

  // Nobody else uses the database: pgvigil lets go, the simulator suspends the compute.
  REQUIRE(sim.WaitForState("idle", 15s));
  REQUIRE(agent.WaitState("idle", 10s));
  CHECK(agent.Get("/health/db").status == 200);  // idle is healthy
  const auto accepted = sim.connections_accepted();
  std::this_thread::sleep_for(3s);
  CHECK(sim.connections_accepted() == accepted);  // pgvigil opened nothing while asleep
  json h = Get(agent, "/health");
  CHECK(h["neon"]["compute"]["state"] == "idle");

  // POST /wake: pgvigil itself wakes the compute, and measures the cold start.
  CHECK(agent.Request("POST", "/wake").status == 202);
  REQUIRE(agent.WaitState("up", 10s));
  CHECK(agent.Metric("pgvigil_cold_starts_total").value_or(0) >= 1);
  CHECK(sim.cold_starts() >= 1);

  // Left alone again, it sleeps again; then the app connects: the compute wakes, and pgvigil
  // is back within about one API poll.
  REQUIRE(sim.WaitForState("idle", 15s));
  REQUIRE(agent.WaitState("idle", 10s));
  std::thread app(
      [&] { RunCommand("psql '" + sim.Url() + "' -c 'SELECT pg_sleep(3)' >/dev/null 2>&1"); });
  const bool back_up = agent.WaitState("up", 10s);
  app.join();
  CHECK(back_up);
}

TEST_CASE("neon keep_awake: probing keeps the compute awake", "[live][neon]") {
  PgServer pg;
  NeonSimOptions sim_options;
  sim_options.suspend_timeout = 1500ms;
  NeonSim sim(pg, sim_options);
  AgentProcess agent(Config("[neon]\nmode = \"on\"\nallow_insecure_tls = true\nidle_policy = "
                            "\"keep_awake\"\n[sampling]\nenabled = false\n"),
                     {{"TEST_DB_URL", sim.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 15s));
  std::this_thread::sleep_for(4s);
  CHECK(sim.suspends() == 0);
  CHECK(agent.State() == "up");
}

TEST_CASE("neon: 57P01 on pgvigil's session is expected, not a failure", "[live][neon]") {
  PgServer pg;
  NeonSimOptions sim_options;
  sim_options.suspend_timeout = 0ms;
  NeonSim sim(pg, sim_options);
  auto terminate = [&] {
    pg.Psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
        "'pgvigil'");
  };
  SECTION("keep_awake: reconnects at once, never down") {
    AgentProcess agent(Config("[neon]\nmode = \"on\"\nallow_insecure_tls = true\nidle_policy = "
                              "\"keep_awake\"\n[sampling]\nenabled = false\n"),
                       {{"TEST_DB_URL", sim.Url()}});
    REQUIRE(agent.WaitHttp());
    REQUIRE(agent.WaitState("up", 15s));
    for (int i = 1; i <= 3; ++i) {
      terminate();
      const bool counted = Eventually(
          [&] { return agent.Metric("pgvigil_neon_sessions_terminated_total").value_or(0) >= i; },
          5s);
      INFO(agent.Output());
      REQUIRE(counted);
      REQUIRE(agent.WaitState("up", 5s));
    }
    const std::string out = agent.Output();
    INFO(out);
    CHECK(out.find("to=down") == std::string::npos);
    CHECK(out.find("expected on suspend or restart") != std::string::npos);
    CHECK(agent.Metric("pgvigil_probes_total{outcome=\"admin_shutdown\"}").value_or(0) >= 1);
    CHECK(agent.Metric("pgvigil_pool_connections_opened_total{pool=\"main\"}").value_or(0) >= 4);
  }
  SECTION("allow_suspend without an API: lets the compute sleep, opens nothing") {
    AgentProcess agent(Config("[neon]\nmode = \"on\"\nallow_insecure_tls = true\nsuspend_after = "
                              "\"1h\"\n[sampling]\nenabled = false\n"),
                       {{"TEST_DB_URL", sim.Url()}});
    REQUIRE(agent.WaitHttp());
    REQUIRE(agent.WaitState("up", 15s));
    terminate();
    REQUIRE(agent.WaitState("idle", 5s));
    const auto accepted = sim.connections_accepted();
    std::this_thread::sleep_for(2s);
    CHECK(sim.connections_accepted() == accepted);
    CHECK(agent.Get("/health/db").status == 200);
    CHECK(agent.Output().find("to=down") == std::string::npos);
    json h = Get(agent, "/health");
    CHECK_THAT(h["neon"]["policy"]["reason"].get<std::string>(), Catch::Contains("57P01"));
  }
}

TEST_CASE("neon: a cold start longer than connect_timeout succeeds within wake_timeout",
          "[live][neon]") {
  PgServer pg;
  NeonSimOptions sim_options;
  sim_options.suspend_timeout = 1000ms;
  sim_options.cold_start_delay = 4500ms;  // longer than connect_timeout = 3s
  NeonSim sim(pg, sim_options);
  const std::string neon = NeonApiSection(sim, "suspend_after = \"1s\"\nwake_timeout = \"10s\"\n");
  AgentProcess agent(Config(neon + "[sampling]\nenabled = false\n"),
                     {{"TEST_DB_URL", sim.Url()}, {"NEON_API_KEY", sim_options.api_key}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 15s));
  REQUIRE(sim.WaitForState("idle", 15s));
  REQUIRE(agent.WaitState("idle", 10s));
  const double errors_before =
      agent.Metric("pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"timeout\"}")
          .value_or(0);
  CHECK(agent.Request("POST", "/wake").status == 202);
  REQUIRE(agent.WaitState("up", 15s));
  CHECK(agent.Metric("pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"timeout\"}")
            .value_or(0) == errors_before);
  CHECK(agent.Metric("pgvigil_cold_starts_total").value_or(0) == 1);
  CHECK(agent.Metric("pgvigil_cold_start_duration_seconds_sum").value_or(0) >= 4.0);
  CHECK(agent.Output().find("to=down") == std::string::npos);
}

TEST_CASE("neon: a wrong API key is reported and nothing crashes", "[live][neon]") {
  PgServer pg;
  NeonSimOptions sim_options;
  sim_options.suspend_timeout = 0ms;
  NeonSim sim(pg, sim_options);
  const std::string neon = NeonApiSection(sim);
  AgentProcess agent(Config(neon), {{"TEST_DB_URL", sim.Url()}, {"NEON_API_KEY", "wrong-key-xyz"}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 15s));
  REQUIRE(Eventually(
      [&] {
        auto h = json::parse(agent.Get("/health").body, nullptr, false);
        return !h.is_discarded() && h["neon"].is_object() &&
               h["neon"]["api"]["last_outcome"] == "unauthorized";
      },
      10s));
  CHECK(agent.Get("/livez").status == 200);
  const std::string all = agent.Output() + agent.Get("/health").body + agent.Get("/metrics").body;
  CHECK(all.find("wrong-key-xyz") == std::string::npos);
}
