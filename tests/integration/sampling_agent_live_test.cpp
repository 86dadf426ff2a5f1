// The statement sampler as a user meets it: the real binary's /queries right after its first
// sample, bad /queries parameters, and (in-process, with a test hook) a collector that throws
// while the agent keeps probing.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "app.hpp"
#include "config/database_url.hpp"
#include "config/settings.hpp"
#include "db/connection.hpp"
#include "sampling/statement_sampler.hpp"
#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil;
using namespace pgvigil::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string SamplingConfig(const std::string& extra = "") {
  return FastAgentConfig("[sampling]\nstatements_interval = \"2s\"\nactivity_interval = \"1s\"\n" +
                         extra);
}

Connection OpenApp(const PgServer& pg) {
  ParsedUrl parsed = ParseDatabaseUrl(pg.Url());
  REQUIRE(parsed.has_value());
  parsed->Set("application_name", "workload");
  auto opened = Connection::Open(*parsed, std::chrono::steady_clock::now() + 10s);
  REQUIRE(opened.has_value());
  return std::move(*opened);
}

std::string SampledAt(const AgentProcess& agent) {
  auto r = agent.Get("/queries");
  if (r.status != 200) return "";
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j["statements"]["sampled_at"].is_string()) return "";
  return j["statements"]["sampled_at"];
}

const json* FindQuery(const json& list, const std::string& needle) {
  for (const auto& s : list) {
    if (s.contains("query") && s["query"].is_string() &&
        s["query"].get<std::string>().find(needle) != std::string::npos) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a statement run 50 times right after the first sample is in the next window",
          "[live][sampling]") {
  PgServer pg;
  AgentProcess agent(SamplingConfig(), {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  std::string first;
  REQUIRE(Eventually(
      [&] {
        first = SampledAt(agent);
        return !first.empty();
      },
      20s));
  Connection app = OpenApp(pg);
  for (int i = 0; i < 50; ++i) {
    auto r =
        app.Exec("SELECT 'x' AS first_window_marker_q, 1", std::chrono::steady_clock::now() + 5s);
    REQUIRE(r.has_value());
  }
  // Right after the next window closes.
  REQUIRE(Eventually([&] { return SampledAt(agent) != first; }, 10s));
  const auto body = agent.Get("/queries").body;
  INFO(body);
  const json j = json::parse(body);
  const json* last = FindQuery(j["statements"]["top_by_calls"], "first_window_marker_q");
  REQUIRE(last != nullptr);
  CHECK((*last)["calls"] == 50);
  const json* agg = FindQuery(j["window"]["statements"], "first_window_marker_q");
  REQUIRE(agg != nullptr);
  CHECK((*agg)["calls"] == 50);
  CHECK(j["window"]["sort"] == "time");
  CHECK(j["window"]["seconds"] == Approx(900).margin(1));

  // The top statement and its text reach Prometheus on the default top_n_labels.
  const auto metrics = agent.Get("/metrics").body;
  const std::string info = "pgvigil_top_statement_info{fingerprint=\"" +
                           (*agg)["fingerprint"].get<std::string>() +
                           "\",query=\"SELECT $1 AS first_window_marker_q, $2\"} 1";
  CHECK(metrics.find(info) != std::string::npos);

  // Bad parameters: 400 and a message naming the parameter and what is allowed.
  auto bad = agent.Get("/queries?window=forever");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("window: \"forever\" is not a positive duration") != std::string::npos);
  bad = agent.Get("/queries?sort=slowest");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("allowed time, calls, mean, rows") != std::string::npos);
  auto ok = agent.Get("/queries?window=10m&sort=calls&limit=1");
  REQUIRE(ok.status == 200);
  CHECK(json::parse(ok.body)["window"]["statements"].size() == 1);
}

TEST_CASE("fault: a collector that throws is caught, counted, reported; probing goes on",
          "[live][fault][sampling]") {
  PgServer pg;
  const std::string toml = "[database]\nurl = \"" + pg.Url() +
                           "\"\n[probe]\ninterval = \"300ms\"\ntimeout = \"250ms\"\n"
                           "[http]\nlisten = \"127.0.0.1:0\"\n"
                           "[sampling]\nstatements_interval = \"1s\"\n";
  const Settings settings = LoadSettingsFromString(toml, "fault.toml", CliOptions{});
  StatementSampler::ThrowOnNextRunsForTest(3);
  Agent agent(settings);
  std::string error;
  REQUIRE(agent.Start(&error));
  httplib::Client http("127.0.0.1", agent.port());
  http.set_read_timeout(5, 0);
  auto get = [&](const std::string& path) {
    auto r = http.Get(path);
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  };
  auto metric = [&](const std::string& series) {
    return MetricValue(get("/metrics").second, series).value_or(-1);
  };
  const std::string thrown = "pgvigil_internal_errors_total{component=\"statements\"}";
  const std::string probes_ok = "pgvigil_probes_total{outcome=\"ok\"}";
  REQUIRE(Eventually([&] { return metric(thrown) >= 3; }, 20s));
  const double ok_after_faults = metric(probes_ok);
  // The loop went on: more probes, and the sampler works again once the fault is spent.
  CHECK(Eventually([&] { return metric(probes_ok) >= ok_after_faults + 3; }, 10s));
  CHECK(Eventually(
      [&] {
        auto h = json::parse(get("/health").second, nullptr, false);
        return !h.is_discarded() && h["sampling"]["statements"]["status"] == "ok";
      },
      10s));
  CHECK(metric(thrown) == 3);
  CHECK(get("/livez").first == 200);
  const auto health = json::parse(get("/health").second);
  INFO(health.dump(1));
  CHECK(health["status"] == "ok");
  CHECK(health["internal_errors"]["by_component"]["statements"] == 3);
  CHECK(health["internal_errors"]["total"] == 3);
  CHECK(health["internal_errors"]["last"].get<std::string>().find(
            "statements: statement sampler fault injected") != std::string::npos);
  CHECK(get("/queries").first == 200);
  agent.Shutdown();
}
