// Concurrency tests, written for ThreadSanitizer (scripts/test.sh runs them in a TSan build too):
// the scheduler thread publishing snapshots and metrics while HTTP handlers read them, and a
// shutdown while clients keep hammering every endpoint. The agent runs in-process (Agent) against
// a real PostgreSQL, so the threads are pgvigil's own.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "app.hpp"
#include "config/settings.hpp"
#include "health/snapshot.hpp"
#include "support/pg_server.hpp"

using namespace pgvigil;
using namespace pgvigil::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Settings FastSettings(const PgServer& pg) {
  const std::string toml = "[database]\nurl = \"" + pg.Url() + R"("
connect_timeout = "2s"
[pool]
size = 2
backoff_initial = "50ms"
backoff_max = "200ms"
[probe]
interval = "100ms"
timeout = "90ms"
[http]
listen = "127.0.0.1:0"
shutdown_timeout = "5s"
[sampling]
activity_interval = "200ms"
statements_interval = "300ms"
slow_threshold = "100ms"
[stats]
interval = "300ms"
[tracing]
buffer_spans = 64
)";
  return LoadSettingsFromString(toml, "concurrency.toml", CliOptions{});
}

// Clients that request every endpoint in a loop until told to stop, counting statuses.
class Hammer {
 public:
  Hammer(int port, int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, port, i] { Run(port, i); });
    }
  }
  ~Hammer() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::map<int, int> statuses() const {
    std::lock_guard lock(mu_);
    return statuses_;
  }
  int total() const {
    int n = 0;
    for (const auto& [status, count] : statuses()) n += status > 0 ? count : 0;
    return n;
  }

 private:
  void Run(int port, int index) {
    static const char* kPaths[] = {"/metrics",  "/health",    "/livez",   "/readyz",
                                   "/startupz", "/health/db", "/queries", "/traces?limit=5"};
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    client.set_keep_alive(index % 2 == 0);  // half reuse connections, half open new ones
    for (size_t n = static_cast<size_t>(index); !stop_; ++n) {
      int status = 0;
      if (n % 29 == 0) {
        auto r = client.Post("/wake");
        status = r ? r->status : 0;
      } else {
        auto r = client.Get(kPaths[n % std::size(kPaths)]);
        status = r ? r->status : 0;
      }
      std::lock_guard lock(mu_);
      ++statuses_[status];
    }
  }
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::map<int, int> statuses_;
  std::vector<std::thread> threads_;
};

}  // namespace

TEST_CASE("snapshot store: a writer publishing while readers read", "[concurrency]") {
  SnapshotStore store;
  std::atomic<bool> stop{false};
  std::atomic<int> empty{0}, backwards{0};  // Catch macros are not thread-safe: count here
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      std::uint64_t last = 0;
      while (!stop) {
        auto s = store.Current();
        if (!s) {
          ++empty;
          continue;
        }
        // Sequence numbers only go forward for any one reader; the text matches the number.
        if (s->sequence < last ||
            (s->sequence > 0 && s->reason != "publish " + std::to_string(s->sequence))) {
          ++backwards;
        }
        last = s->sequence;
      }
    });
  }
  for (std::uint64_t i = 1; i <= 20'000; ++i) {
    auto s = std::make_shared<Snapshot>();
    s->sequence = i;
    s->reason = "publish " + std::to_string(i);
    store.Publish(std::move(s));
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(empty == 0);
  CHECK(backwards == 0);
  CHECK(store.Current()->sequence == 20'000);
}

TEST_CASE("agent: scheduler and HTTP readers run together; shutdown under load is bounded",
          "[concurrency][live]") {
  PgServer pg;
  const Settings settings = FastSettings(pg);
  Agent agent(settings);
  std::string error;
  REQUIRE(agent.Start(&error));
  INFO(error);

  Hammer hammer(agent.port(), 4);
  // Churn on the database side while the readers run: sessions killed, queries slow.
  const auto until = Clock::now() + 3s;
  while (Clock::now() < until) {
    pg.Psql("SELECT pg_sleep(0.2)");
    pg.Psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
        "'pgvigil'");
  }
  const int before_shutdown = hammer.total();

  const auto started = Clock::now();
  agent.Shutdown();
  const auto took = Clock::now() - started;
  hammer.Stop();

  CHECK(took < 3s);
  CHECK(before_shutdown > 100);
  const auto statuses = hammer.statuses();
  for (const auto& [status, count] : statuses) {
    INFO("status " << status << " x" << count);
    // 200/202, 503 (readiness or the database while its session was killed), or no answer
    // once the listener closed.
    CHECK((status == 200 || status == 202 || status == 503 || status == 0));
  }
  CHECK(statuses.count(200) == 1);
}
