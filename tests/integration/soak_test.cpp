// Soak test (opt-in: hidden tag, run by `PGVIGIL_SOAK=1 scripts/test.sh` or
// `build/test_integration "[soak]"`): pgvigil probes every second with sampling and statistics
// on, while a fault is injected every minute (backend terminated, server frozen past the
// probe deadline, server killed and restarted, server restarted cleanly). After each fault the
// database must be seen up again and /livez and /metrics must keep answering. RSS and open file
// descriptors are read from /proc at the end of the first minute (after warm-up) and at the end:
// RSS may grow by at most 1 MiB, descriptors stay flat. PGVIGIL_SOAK_MINUTES sets the length
// (default 30). A line per minute goes to stdout.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "support/agent_process.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int OpenFds(int pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int SoakMinutes() {
  const char* v = std::getenv("PGVIGIL_SOAK_MINUTES");
  const int n = v ? std::atoi(v) : 30;
  return n > 1 ? n : 2;
}

void InjectFault(PgServer& pg, int minute) {
  switch (minute % 4) {
    case 0:
      pg.Psql(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
          "'pgvigil'");
      break;
    case 1:
      pg.Freeze();
      std::this_thread::sleep_for(3s);  // the probe deadline is 800ms
      pg.Thaw();
      break;
    case 2:
      pg.Kill();
      std::this_thread::sleep_for(2s);
      pg.Start();
      break;
    default:
      pg.Stop();
      std::this_thread::sleep_for(1s);
      pg.Start();
      break;
  }
}

}  // namespace

TEST_CASE("soak: faults every minute, memory and descriptors stay flat", "[.soak]") {
  const int minutes = SoakMinutes();
  PgServer pg;
  AgentProcess agent(R"([database]
url_env = "TEST_DB_URL"
connect_timeout = "2s"
[pool]
backoff_initial = "100ms"
backoff_max = "1s"
[probe]
interval = "1s"
timeout = "800ms"
failure_threshold = 2
[http]
listen = "127.0.0.1:{port}"
[log]
level = "info"
[sampling]
activity_interval = "5s"
statements_interval = "10s"
[stats]
interval = "10s"
)",
                     {{"TEST_DB_URL", pg.Url()}});
  REQUIRE(agent.WaitHttp());
  REQUIRE(agent.WaitState("up", 15s));

  long rss_start = 0;
  int fds_start = 0;
  const auto begin = Clock::now();
  for (int minute = 0; minute < minutes; ++minute) {
    const auto minute_end = begin + std::chrono::minutes(minute + 1);
    InjectFault(pg, minute);
    const auto fault_done = Clock::now();
    REQUIRE(agent.WaitState("up", 20s));
    const double recovery = std::chrono::duration<double>(Clock::now() - fault_done).count();
    // Scrape like Prometheus would (and more) until the minute is over.
    while (Clock::now() < minute_end) {
      REQUIRE(agent.Get("/livez").status == 200);
      REQUIRE(agent.Get("/metrics").status == 200);
      agent.Get("/health");
      agent.Get("/queries");
      std::this_thread::sleep_for(500ms);
    }
    REQUIRE(agent.WaitState("up", 20s));
    const long rss = ProcStatus(agent.pid(), "VmRSS");
    const int fds = OpenFds(agent.pid());
    if (minute == 0) {
      rss_start = rss;
      fds_start = fds;
    }
    std::cout << "soak minute=" << minute + 1 << " fault=" << minute % 4
              << " recovery_s=" << recovery << " rss_kib=" << rss << " fds=" << fds << std::endl;
  }
  const long rss_end = ProcStatus(agent.pid(), "VmRSS");
  const int fds_end = OpenFds(agent.pid());
  std::cout << "soak result: rss_kib " << rss_start << " -> " << rss_end << ", fds " << fds_start
            << " -> " << fds_end << std::endl;
  CHECK(rss_end - rss_start <= 1024);
  CHECK(fds_end <= fds_start + 1);  // a keep-alive socket of the last scrape may linger
  CHECK(agent.Output().find(kPassword) == std::string::npos);
}
