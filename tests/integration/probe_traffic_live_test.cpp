// probe.reuse_traffic against a real PostgreSQL 15: at ticks where the activity sampler is due on
// the probe's connection its statement stands for SELECT 1 (pg_stat_statements counts fewer probe
// statements than probes) while the database stays up; a frozen server (SIGSTOP) still goes down
// within the bound the other live tests use; with reuse off every probe is a SELECT 1. A stats
// follower's lock try stands for SELECT 1 at its tick; frozen, the follower still goes down in
// the same bound.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil::test;
using namespace std::chrono_literals;

namespace {

// The probe statement as pg_stat_statements normalises it ("/* pgvigil */ SELECT $1", then the
// span's traceparent comment when tracing is on).
long ProbeStatements(const PgServer& pg) {
  return std::stol(
      pg.Psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
              "WHERE query ~ '^/\\* pgvigil \\*/ SELECT \\$1(\\s|$)'"));
}

// Every probe, whatever its outcome (a loaded machine can time one out: it still sent SELECT 1).
double AllProbes(const AgentProcess& agent) {
  double sum = 0;
  std::istringstream lines(agent.Get("/metrics").body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("pgvigil_probes_total{", 0) == 0) sum += std::stod(line.substr(line.rfind(' ')));
  }
  return sum;
}

struct Window {
  double probes = 0, by_traffic = 0;
  long selects = 0;
  bool never_down = true;  // up, or degraded when the machine is loaded (CI at -j4)
  std::string states;
};

// Probes (from /metrics) and probe statements (from the server) over `d`, /health polled.
Window Measure(const AgentProcess& agent, const PgServer& pg, std::chrono::milliseconds d) {
  auto metric = [&](const char* series) { return agent.Metric(series).value_or(0); };
  const double probes0 = AllProbes(agent);
  const double traffic0 = metric("pgvigil_probes_by_traffic_total");
  const long selects0 = ProbeStatements(pg);
  Window w;
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    const auto h = nlohmann::json::parse(agent.Get("/health").body);
    const std::string state = h["database"]["state"];
    w.never_down = w.never_down && state != "down";
    w.states += state + " ";
    std::this_thread::sleep_for(200ms);
  }
  w.probes = AllProbes(agent) - probes0;
  w.by_traffic = metric("pgvigil_probes_by_traffic_total") - traffic0;
  w.selects = ProbeStatements(pg) - selects0;
  return w;
}

// The activity sampler every 1.2 s: due at about every other probe (600 ms).
const char* kSampling = R"(
[sampling]
activity_interval = "1200ms"
)";

}  // namespace

TEST_CASE("probe by traffic: fewer SELECT 1 than probes, up; a frozen server still goes down",
          "[live][traffic]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(kSampling), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  std::this_thread::sleep_for(2s);

  const Window w = Measure(agent, pg, 10s);
  INFO("probes " << w.probes << ", by traffic " << w.by_traffic << ", SELECT 1 " << w.selects
                 << ", states " << w.states);
  CHECK(w.never_down);
  CHECK(w.probes >= 10);
  CHECK(w.by_traffic >= 3);
  // Every probe is a SELECT 1 or by traffic (±1 for the probe in flight at either end).
  CHECK(std::abs(w.selects + w.by_traffic - w.probes) <= 1);
  CHECK(w.selects < w.probes);
  // The latency histogram keeps SELECT 1 only.
  const double latency_count = agent.Metric("pgvigil_probe_duration_seconds_count").value_or(0);
  const double ok = agent.Metric("pgvigil_probes_total{outcome=\"ok\"}").value_or(0);
  const double traffic = agent.Metric("pgvigil_probes_by_traffic_total").value_or(0);
  CHECK(std::abs(latency_count + traffic - ok) <= 1);

  // SIGSTOP: the same bound as "frozen server" in agent_live_test (two failures at 500 ms
  // deadlines, 600 ms apart), whether the tick's first statement is a job's or SELECT 1.
  pg.Freeze();
  const bool went_down = agent.WaitState("down", 8s);
  const auto h = nlohmann::json::parse(agent.Get("/health").body);
  pg.Thaw();
  REQUIRE(went_down);
  CHECK(h["database"]["error_kind"] == "timeout");
  REQUIRE(agent.WaitState("up", 10s));
}

TEST_CASE("probe.reuse_traffic = false: a SELECT 1 at every probe", "[live][traffic]") {
  PgServer pg;
  std::string config = FastAgentConfig(kSampling);
  const std::string threshold = "failure_threshold = 2\n";  // in FastAgentConfig's [probe]
  const auto at = config.find(threshold);
  REQUIRE(at != std::string::npos);
  config.insert(at + threshold.size(), "reuse_traffic = false\n");
  AgentProcess agent(config, DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  const Window w = Measure(agent, pg, 6s);
  INFO("probes " << w.probes << ", SELECT 1 " << w.selects << ", states " << w.states);
  CHECK(w.never_down);
  CHECK(w.by_traffic == 0);
  CHECK(std::abs(w.selects - w.probes) <= 1);
}

namespace {
std::string Role(const AgentProcess& agent) {
  const auto h = nlohmann::json::parse(agent.Get("/health").body);
  return h["stats_leader"]["role"].is_string() ? h["stats_leader"]["role"].get<std::string>() : "";
}

// The followers' tries of the stats lock (fleet/stats_leader.cpp's statement).
long LockTries(const PgServer& pg) {
  return std::stol(
      pg.Psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
              "WHERE query LIKE '/* pgvigil */ SELECT pg_backend_pid() = %'"));
}

// A follower retries every 1.5 stats intervals = 300 ms, within half a probe interval (300 ms)
// of every 600 ms tick: a try ahead of every probe.
const char* kFleet = R"(
[stats]
interval = "200ms"
)";
}  // namespace

TEST_CASE("probe by traffic: a stats follower's lock try stands for SELECT 1; frozen, still down",
          "[live][traffic][fleet]") {
  PgServer pg;
  AgentProcess leader(FastAgentConfig(kFleet), DbUrlEnv(pg.Url()));
  REQUIRE(leader.WaitHttp());
  REQUIRE(Eventually([&] { return Role(leader) == "leader"; }, 10s));
  AgentProcess follower(FastAgentConfig(kFleet), DbUrlEnv(pg.Url()));
  REQUIRE(follower.WaitHttp());
  REQUIRE(Eventually([&] { return Role(follower) == "follower"; }, 10s));
  std::this_thread::sleep_for(2s);

  const long tries0 = LockTries(pg);
  const double leader_probes0 = AllProbes(leader);
  const double leader_traffic0 = leader.Metric("pgvigil_probes_by_traffic_total").value_or(0);
  const long selects0 = ProbeStatements(pg);
  const Window w = Measure(follower, pg, 8s);
  const long tries = LockTries(pg) - tries0;
  const double leader_selects =
      AllProbes(leader) - leader_probes0 -
      (leader.Metric("pgvigil_probes_by_traffic_total").value_or(0) - leader_traffic0);
  const long selects = ProbeStatements(pg) - selects0;
  INFO("follower: probes " << w.probes << ", by traffic " << w.by_traffic << ", lock tries "
                           << tries << "; SELECT 1 of both " << selects << ", of the leader "
                           << leader_selects << "; states " << w.states);
  CHECK(w.never_down);
  CHECK(Role(follower) == "follower");
  CHECK(w.probes >= 10);
  // Nearly every follower probe was a lock try (the first and last ticks may be cut by the
  // window), and every try stood for a probe (±2 for the ticks in flight at either end).
  CHECK(w.by_traffic >= w.probes - 3);
  CHECK(std::abs(tries - w.by_traffic) <= 2);
  // The follower's SELECT 1 are the probes the tries did not stand for: both sidecars' SELECT 1
  // are the leader's plus those.
  CHECK(std::abs(selects - (leader_selects + w.probes - w.by_traffic)) <= 3);

  // SIGSTOP: the follower's first statement of the tick is its lock try, cut at probe.timeout;
  // then the probe decides: down within the bound of the test above.
  const auto froze_at = std::chrono::steady_clock::now();
  pg.Freeze();
  const bool went_down = follower.WaitState("down", 8s);
  const std::chrono::duration<double> down_after = std::chrono::steady_clock::now() - froze_at;
  const auto h = nlohmann::json::parse(follower.Get("/health").body);
  pg.Thaw();
  INFO("the follower went down " << down_after.count() << " s after SIGSTOP");
  REQUIRE(went_down);
  CHECK(h["database"]["error_kind"] == "timeout");
  REQUIRE(follower.WaitState("up", 10s));
}
