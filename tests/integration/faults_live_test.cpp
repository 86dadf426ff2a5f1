// Fault injection against the real binary: each fault is caused for real (SIGKILL, SIGSTOP,
// pg_terminate_backend, a full max_connections, a name that does not resolve, a DNS server that
// never answers, TLS the server lacks, a peer that never speaks or speaks garbage). Each test
// asserts that /livez and /metrics keep answering quickly during the fault, what /health says, and,
// where the fault ends, how long pgvigil takes to see the database up again (bounds with slack).
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "support/agent_process.hpp"
#include "support/pg_server.hpp"
#include "support/tcp_listener.hpp"

using namespace pgvigil::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// /livez and /metrics answer, fast, whatever the database does.
void CheckServing(const AgentProcess& agent) {
  const HttpReply live = agent.Get("/livez");
  const HttpReply metrics = agent.Get("/metrics");
  CHECK(live.status == 200);
  CHECK(metrics.status == 200);
  CHECK(live.elapsed < 250ms);
  CHECK(metrics.elapsed < 250ms);
  CHECK(metrics.body.find("pg_up ") != std::string::npos);
}

// Waits (Eventually) until `pred` holds, checking the HTTP side between polls; returns how
// long it took.
std::optional<Clock::duration> TimeUntil(const AgentProcess& agent,
                                         const std::function<bool()>& pred,
                                         std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  const bool held = Eventually(
      [&] {
        if (pred()) return true;
        CheckServing(agent);
        return false;
      },
      timeout);
  if (!held) return std::nullopt;
  return Clock::now() - start;
}

std::optional<Clock::duration> TimeToState(const AgentProcess& agent, const std::string& state,
                                           std::chrono::milliseconds timeout) {
  return TimeUntil(
      agent, [&] { return agent.State() == state; }, timeout);
}

// The database usable again as the app sees it: /health/db answers 200 (up or degraded).
std::optional<Clock::duration> TimeToUsable(const AgentProcess& agent,
                                            std::chrono::milliseconds timeout) {
  return TimeUntil(
      agent, [&] { return agent.Get("/health/db").status == 200; }, timeout);
}

// `url` with one more query parameter.
std::string WithParam(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

std::string BackendPid(const PgServer& pg) {
  return pg.Psql(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgvigil' AND client_port IS NOT "
      "NULL LIMIT 1");
}

}  // namespace

TEST_CASE("fault: server killed and restarted", "[live][fault]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));

  pg.Kill();
  const auto to_down = TimeToState(agent, "down", 10s);
  REQUIRE(to_down);
  CHECK(*to_down < 5s);  // two failed probes 600ms apart, plus the connect attempts
  CHECK(agent.Get("/health/db").status == 503);
  CHECK(agent.Metric("pg_up") == 0.0);
  std::this_thread::sleep_for(1s);
  CheckServing(agent);

  pg.Start();
  const auto usable = TimeToUsable(agent, 10s);
  REQUIRE(usable);
  CHECK(*usable < 2s);  // backoff_max 500ms + probe interval 600ms
  CHECK(agent.Metric("pg_up") == 1.0);
  // "degraded" while the recent window still holds the failures, then "up".
  CHECK(TimeToState(agent, "up", 10s));
}

TEST_CASE("fault: backend terminated in the middle of the probe query", "[live][fault]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));
  const std::string pid = BackendPid(pg);
  REQUIRE_FALSE(pid.empty());

  // Stop pgvigil's backend so the next SELECT 1 hangs in it, ask for its termination while the
  // query is in flight, then let it run: the answer to the query is the 57P01 FATAL.
  REQUIRE(RunCommand("kill -STOP " + pid) == 0);
  std::this_thread::sleep_for(300ms);
  pg.Psql("SELECT pg_terminate_backend(" + pid + ")");
  REQUIRE(RunCommand("kill -CONT " + pid) == 0);

  // The session is replaced; the probe that met the termination failed as a lost connection:
  // 57P01 when the FATAL was read first, a reset when the socket closed first (timing), or its
  // deadline.
  const bool replaced =
      Eventually([&] { return HealthOf(agent)["pool"]["opened_total"] == 2; }, 5s);
  const std::string metrics = agent.Get("/metrics").body;
  INFO(metrics);
  INFO(agent.Output());
  REQUIRE(replaced);
  double lost = 0;
  for (const char* outcome : {"admin_shutdown", "reset", "timeout"}) {
    lost += MetricValue(metrics, std::string("pgvigil_probes_total{outcome=\"") + outcome + "\"}")
                .value_or(0);
  }
  CHECK(lost >= 1);
  CheckServing(agent);
  const auto to_up = TimeToState(agent, "up", 5s);
  REQUIRE(to_up);
  CHECK(agent.Output().find("to=down") == std::string::npos);  // one failure is not an outage
}

TEST_CASE("fault: max_connections exhausted by another client", "[live][fault]") {
  PgServerOptions options;
  options.extra_conf = {"max_connections = 6", "superuser_reserved_connections = 2"};
  PgServer pg(options);
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(pg.Url()));
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 10s));

  // Another client takes every slot a normal role can have, including the one pgvigil's
  // session held (terminated, then taken before pgvigil's next probe reconnects).
  std::vector<std::unique_ptr<PGconn, decltype(&PQfinish)>> hogs;
  auto hog_all = [&] {
    while (true) {
      std::unique_ptr<PGconn, decltype(&PQfinish)> c(
          PQconnectdb(WithParam(pg.Url(), "application_name=hog").c_str()), &PQfinish);
      if (PQstatus(c.get()) != CONNECTION_OK) return;
      hogs.push_back(std::move(c));
    }
  };
  REQUIRE(Eventually(
      [&] {
        pg.Psql(
            "SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity WHERE "
            "application_name = 'pgvigil'");
        hog_all();
        return pg.Psql(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                   "'pgvigil'") == "0";
      },
      10s));
  REQUIRE(hogs.size() >= 3);
  const auto to_down = TimeToState(agent, "down", 10s);
  REQUIRE(to_down);
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "too_many_connections");
  CHECK(agent
            .Metric(
                "pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"too_many_connections\"}")
            .value_or(0) >= 1);
  std::this_thread::sleep_for(1s);
  CheckServing(agent);

  hogs.clear();
  const auto usable = TimeToUsable(agent, 10s);
  REQUIRE(usable);
  CHECK(*usable < 2s);
  CHECK(TimeToState(agent, "up", 10s));
}

TEST_CASE("fault: a host name that does not resolve", "[live][fault]") {
  AgentProcess agent(
      FastAgentConfig(),
      DbUrlEnv(
          "postgresql://vigil:pw@pgvigil-no-such-host.invalid:5432/postgres?connect_timeout=2"));
  REQUIRE(agent.WaitHttp());
  REQUIRE(TimeToState(agent, "down", 15s));
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "dns");
  CHECK(agent.Get("/readyz").status == 200);  // readiness is pgvigil's, not the database's
  for (int i = 0; i < 5; ++i) {
    CheckServing(agent);
    std::this_thread::sleep_for(200ms);
  }
}

// A UDP socket on a random loopback address, port 53, that reads every query and never answers.
class SilentDnsServer {
 public:
  SilentDnsServer() {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 20 && fd_ < 0; ++attempt) {
      int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(53);
      address_ =
          "127.53." + std::to_string(rng() % 250 + 1) + "." + std::to_string(rng() % 250 + 1);
      ::inet_pton(AF_INET, address_.c_str(), &sa.sin_addr);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        fd_ = fd;
      } else {
        ::close(fd);
      }
    }
  }
  ~SilentDnsServer() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

TEST_CASE("fault: a DNS server that never answers", "[live][fault]") {
  // pgvigil runs in a private mount namespace whose /etc/resolv.conf names a server that
  // swallows every query (5 s × 2 attempts: a lookup inside libpq would block ~10 s per try).
  SilentDnsServer dns;
  if (::geteuid() != 0 || !dns.ok() || std::system("unshare --mount true >/dev/null 2>&1") != 0) {
    WARN("skipped: needs root, a loopback UDP port 53 and unshare --mount");
    return;
  }
  const std::string resolv = "/tmp/pgvigil-resolv-" + std::to_string(::getpid()) + ".conf";
  std::ofstream(resolv) << "nameserver " << dns.address() << "\noptions timeout:5 attempts:2\n";
  struct Cleanup {
    std::string path;
    ~Cleanup() { std::remove(path.c_str()); }
  } cleanup{resolv};
  // Spans go to a collector by name too: its lookups hang the same way.
  AgentProcess agent(FastAgentConfig(R"(
[tracing]
otlp_endpoint = "http://collector.pgvigil-test.example:4318/v1/traces"
export_interval = "200ms"
export_timeout = "10s"
)"),
                     DbUrlEnv("postgresql://vigil:pw@db.pgvigil-test.example:5432/postgres"), {},
                     {"/usr/bin/unshare", "--mount", "--", "/bin/sh", "-c",
                      "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"", resolv});
  REQUIRE(agent.WaitHttp());
  const auto first = TimeUntil(
      agent, [&] { return HealthOf(agent)["database"]["error_kind"] == "dns"; }, 15s);
  REQUIRE(first);
  CHECK(*first < 5s);  // the connect deadline (1.5 s), not the resolver's 10 s
  const json h = HealthOf(agent);
  CHECK_THAT(
      h["database"]["reason"].get<std::string>(),
      Catch::Contains("db.pgvigil-test.example") && Catch::Contains("no answer from the DNS"));
  REQUIRE(TimeToState(agent, "down", 10s));
  // Later attempts wait for the lookup already running instead of starting more.
  for (int i = 0; i < 10; ++i) {
    CheckServing(agent);
    std::this_thread::sleep_for(300ms);
  }
  const long threads = ProcStatus(agent.pid(), "Threads");
  CHECK(threads > 0);
  CHECK(threads <= 16);
  // The exporter waits on a lookup of the collector's name (10 s export timeout) when SIGTERM
  // comes: shutdown abandons it at the flush deadline and exits cleanly, before the watchdog.
  agent.Signal(SIGTERM);
  const auto t_term = Clock::now();
  const auto code = agent.WaitExit(8s);
  REQUIRE(code);
  CHECK(*code == 0);
  CHECK(Clock::now() - t_term < 3s);  // http.shutdown_timeout
}

TEST_CASE("fault: TLS required but the server has none", "[live][fault]") {
  PgServer pg;
  AgentProcess agent(FastAgentConfig(), DbUrlEnv(WithParam(pg.Url(), "sslmode=require")));
  REQUIRE(agent.WaitHttp());
  REQUIRE(TimeToState(agent, "misconfigured", 10s));
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "tls");
  CHECK_THAT(h["database"]["reason"].get<std::string>(), Catch::Contains("SSL"));
  CHECK_THAT(h["database"]["hint"].get<std::string>(), Catch::Contains("sslmode"));
  CheckServing(agent);
  // Misconfigured: no reconnect storm (misconfigured_backoff = 30s).
  std::this_thread::sleep_for(2s);
  CHECK(agent.Metric("pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"tls\"}") == 1.0);
  CHECK(agent.Output().find(kPassword) == std::string::npos);
}

TEST_CASE("fault: a peer that accepts and never speaks (blackhole)", "[live][fault]") {
  TcpListener hole(TcpListener::Mode::kBlackhole);
  AgentProcess agent(
      FastAgentConfig(),
      DbUrlEnv("postgresql://vigil:pw@127.0.0.1:" + std::to_string(hole.port()) + "/postgres"));
  REQUIRE(agent.WaitHttp());
  const auto to_down = TimeToState(agent, "down", 15s);
  REQUIRE(to_down);
  CHECK(*to_down < 8s);  // two connects bounded by connect_timeout = 1.5s, plus backoff
  CHECK(HealthOf(agent)["database"]["error_kind"] == "timeout");
  CheckServing(agent);
}

TEST_CASE("fault: a peer that speaks garbage", "[live][fault]") {
  TcpListener garbage(TcpListener::Mode::kGarbage, "SSH-2.0-OpenSSH_9.2\r\n");
  AgentProcess agent(FastAgentConfig(),
                     DbUrlEnv("postgresql://vigil:pw@127.0.0.1:" + std::to_string(garbage.port()) +
                              "/postgres?sslmode=disable"));
  REQUIRE(agent.WaitHttp());
  REQUIRE(TimeToState(agent, "misconfigured", 10s));
  json h = HealthOf(agent);
  CHECK(h["database"]["error_kind"] == "protocol");
  CHECK(garbage.accepted() >= 1);
  CheckServing(agent);
  // A new agent must not crash on it: it keeps serving for a while.
  std::this_thread::sleep_for(1s);
  CHECK(agent.Get("/livez").status == 200);
}
