#include "http/server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/status_line.hpp"
#include "version.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;
using pgvigil::test::StatusOf;

namespace {

Settings TestSettings() {
  Settings s;
  s.http.listen = {"127.0.0.1", 0};
  s.http.threads = 4;
  return s;
}

// A running server on a free loopback port with the flags a started agent has.
struct Harness {
  explicit Harness(Settings s = TestSettings()) : settings(std::move(s)), metrics("9.9.9") {
    lifecycle.config_loaded = true;
    lifecycle.Beat();
    server = std::make_unique<HttpServer>(settings, snapshots, lifecycle, metrics);
  }
  void Start() {
    std::string error;
    REQUIRE(server->Start(&error));
    REQUIRE(server->port() > 0);
  }
  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", server->port());
    c.set_connection_timeout(2s);
    c.set_read_timeout(5s);
    return c;
  }
  void Publish(DbState state, std::string reason = "") {
    auto s = std::make_shared<Snapshot>(*snapshots.Current());
    s->state = state;
    s->reason = std::move(reason);
    s->sequence++;
    snapshots.Publish(std::move(s));
  }
  int Status(const char* path) {
    auto r = Client().Get(path);
    return r ? r->status : -1;
  }

  Settings settings;
  SnapshotStore snapshots;
  Lifecycle lifecycle;
  AgentMetrics metrics;
  std::unique_ptr<HttpServer> server;
};

// Sends raw bytes and returns the response head (or what came before a close or 3s).
std::string RawRequest(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading everything
    sent += static_cast<size_t>(n);
  }
  // The status line and headers are all we need; the server may keep the connection open.
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.find("\r\n\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace

TEST_CASE("probe endpoints answer 200 on a started agent") {
  Harness h;
  h.Start();
  CHECK(h.lifecycle.listening);
  auto c = h.Client();
  for (const char* path : {"/livez", "/readyz", "/startupz"}) {
    auto r = c.Get(path);
    REQUIRE(r);
    INFO(path);
    CHECK(r->status == 200);
    CHECK(r->body == "ok\n");
    CHECK(r->get_header_value("Cache-Control") == "no-store");
    CHECK(r->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  }
  // Starting is not usable for /health/db, but /health is only "degraded".
  CHECK(h.Status("/health/db") == 503);
  CHECK(h.Status("/health") == 200);
}

TEST_CASE("livez follows the scheduler heartbeat only") {
  Harness h;
  h.Start();
  h.Publish(DbState::kDown, "timeout: probe took longer than 2s");
  CHECK(h.Status("/livez") == 200);  // the database never affects liveness
  h.lifecycle.heartbeat_ns = (std::chrono::steady_clock::now().time_since_epoch() - 120s).count();
  auto r = h.Client().Get("/livez");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("stale") != std::string::npos);
  h.lifecycle.heartbeat_ns = 0;
  CHECK(h.Status("/livez") == 503);
  h.lifecycle.Beat();
  CHECK(h.Status("/livez") == 200);
}

TEST_CASE("readyz fails while shutting down and ignores the database by default") {
  Harness h;
  h.Start();
  h.Publish(DbState::kDown, "refused");
  CHECK(h.Status("/readyz") == 200);
  h.lifecycle.shutting_down = true;
  auto r = h.Client().Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body == "shutting down\n");
  h.lifecycle.shutting_down = false;
  h.lifecycle.config_loaded = false;
  CHECK(h.Status("/readyz") == 503);
  CHECK(h.Status("/startupz") == 503);
}

TEST_CASE("readyz and startupz follow the database when configured") {
  auto s = TestSettings();
  s.http.readyz_requires_db = true;
  s.http.startupz_requires_probe = true;
  Harness h(s);
  h.Start();
  CHECK(h.Status("/readyz") == 503);
  auto r = h.Client().Get("/startupz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("first probe") != std::string::npos);

  auto snap = std::make_shared<Snapshot>();
  snap->state = DbState::kUp;
  snap->any_probe_finished = true;
  h.snapshots.Publish(snap);
  CHECK(h.Status("/readyz") == 200);
  CHECK(h.Status("/startupz") == 200);
  h.Publish(DbState::kIdle);
  CHECK(h.Status("/readyz") == 200);
  h.Publish(DbState::kMisconfigured, "auth: password authentication failed");
  r = h.Client().Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("misconfigured") != std::string::npos);
}

TEST_CASE("health/db is 200 for usable states and 503 otherwise") {
  Harness h;
  h.Start();
  const std::pair<DbState, int> cases[] = {{DbState::kUp, 200},           {DbState::kDegraded, 200},
                                           {DbState::kIdle, 200},         {DbState::kStarting, 503},
                                           {DbState::kWaking, 503},       {DbState::kDown, 503},
                                           {DbState::kMisconfigured, 503}};
  for (auto [state, code] : cases) {
    h.Publish(state, "why");
    INFO(DbStateName(state));
    auto r = h.Client().Get("/health/db");
    REQUIRE(r);
    CHECK(r->status == code);
    CHECK(r->get_header_value("Cache-Control") == "no-store");
    if (code == 200) CHECK(r->body == std::string(DbStateName(state)) + "\n");
    if (code == 503) CHECK(r->body.find("why") != std::string::npos);
    const int health_code =
        (state == DbState::kDown || state == DbState::kMisconfigured) ? 503 : 200;
    CHECK(h.Status("/health") == health_code);
  }
}

TEST_CASE("health JSON carries state, probe and pool details") {
  Harness h;
  h.Start();
  auto s = std::make_shared<Snapshot>();
  s->state = DbState::kDown;
  s->reason = "timeout: probe took longer than 2s";
  s->error_kind = "timeout";
  s->hint = "check the network path";
  s->any_probe_finished = true;
  s->last_latency_seconds = 0.0123;
  s->last_probe_at = std::chrono::sys_days{std::chrono::year{2026} / 11 / 23} + 10h + 123ms;
  s->consecutive_failures = 3;
  s->target = "postgresql://app@db.example:5432/app";
  s->pool.max_size = 2;
  s->pool.open = 1;
  s->pool.idle = 1;
  s->pool.opened_total = 4;
  s->pool.closed_total = {{"broken", 3}};
  s->pool.connect_errors_total = {{"timeout", 2}};
  s->pool.last_connect_error = "timeout after 5s";
  s->neon = {{"compute", "idle"}};
  // A section holding invalid UTF-8 (a server message) is serialised with it replaced.
  s->tracing = {{"last_error", std::string("bad \xff byte")}};
  s->internal_errors.by_component = {{"activity", 2}};
  s->internal_errors.last = "activity: boom";
  h.snapshots.Publish(s);

  auto r = h.Client().Get("/health");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  CHECK(r->get_header_value("Cache-Control") == "no-store");
  const auto j = nlohmann::json::parse(r->body);
  CHECK(j["status"] == "unavailable");
  CHECK(j["version"] == kVersion);
  CHECK(j["uptime_seconds"].is_number_integer());
  CHECK(j["ready"] == true);
  const auto& db = j["database"];
  CHECK(db["state"] == "down");
  CHECK(db["usable"] == false);
  CHECK(db["reason"] == "timeout: probe took longer than 2s");
  CHECK(db["error_kind"] == "timeout");
  CHECK(db["hint"] == "check the network path");
  CHECK(db["last_latency_ms"].get<double>() == Approx(12.3));
  CHECK(db["last_probe_at"] == "2026-11-23T10:00:00.123Z");
  CHECK(db["last_success_at"].is_null());
  CHECK(db["consecutive_failures"] == 3);
  CHECK(db["target"] == "postgresql://app@db.example:5432/app");
  const auto& pool = j["pool"];
  CHECK(pool["size"] == 2);
  CHECK(pool["open"] == 1);
  CHECK(pool["idle"] == 1);
  CHECK(pool["checked_out"] == 0);
  CHECK(pool["overflow"] == 0);
  CHECK(pool["waiting"] == 0);
  CHECK(pool["opened_total"] == 4);
  CHECK(pool["closed_total"]["broken"] == 3);
  CHECK(pool["connect_errors_total"]["timeout"] == 2);
  CHECK(pool["last_connect_error"] == "timeout after 5s");
  CHECK(j["neon"]["compute"] == "idle");
  CHECK(j["tracing"]["last_error"] == "bad \xef\xbf\xbd byte");  // U+FFFD, never a throw
  CHECK(j["internal_errors"]["total"] == 2);
  CHECK(j["internal_errors"]["by_component"]["activity"] == 2);
  CHECK(j["internal_errors"]["last"] == "activity: boom");
  CHECK(j["sampling"].is_null());

  h.lifecycle.shutting_down = true;
  h.Publish(DbState::kIdle);
  r = h.Client().Get("/health");
  REQUIRE(r);
  CHECK(r->status == 200);
  const auto j2 = nlohmann::json::parse(r->body);
  CHECK(j2["status"] == "ok");
  CHECK(j2["ready"] == false);
}

TEST_CASE("health status names") {
  CHECK(HealthStatusName(DbState::kUp) == "ok");
  CHECK(HealthStatusName(DbState::kIdle) == "ok");
  CHECK(HealthStatusName(DbState::kDegraded) == "degraded");
  CHECK(HealthStatusName(DbState::kStarting) == "degraded");
  CHECK(HealthStatusName(DbState::kWaking) == "degraded");
  CHECK(HealthStatusName(DbState::kDown) == "unavailable");
  CHECK(HealthStatusName(DbState::kMisconfigured) == "unavailable");
}

TEST_CASE("methods: 405 with Allow on known paths, 404 on unknown, HEAD has no body") {
  Harness h;
  h.Start();
  auto c = h.Client();
  auto r = c.Post("/livez", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(r->get_header_value("Allow") == "GET, HEAD");
  r = c.Put("/metrics", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  r = c.Delete("/health");
  REQUIRE(r);
  CHECK(r->status == 405);
  r = c.Patch("/readyz", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  r = c.Options("/health/db");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(r->get_header_value("Allow") == "GET, HEAD");

  for (const char* path : {"/nope", "/livez/", "/health/", "/"}) {
    INFO(path);
    r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status == 404);
    r = c.Post(path, "x", "text/plain");
    REQUIRE(r);
    CHECK(r->status == 404);
  }

  r = c.Head("/livez");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.empty());
  r = c.Head("/nope");
  REQUIRE(r);
  CHECK(r->status == 404);

  const auto trace =
      RawRequest(h.server->port(), "TRACE /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  INFO(trace);
  CHECK(StatusOf(trace) == 405);
  const auto trace404 =
      RawRequest(h.server->port(), "TRACE /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(StatusOf(trace404) == 404);
  // The query string does not change the route.
  CHECK(h.Status("/livez?verbose=1") == 200);
}

TEST_CASE("extra routes from other modules") {
  Harness h;
  h.server->AddRoute({"GET", "/queries", [](const httplib::Request&, httplib::Response& res) {
                        res.set_content("[]", "application/json");
                      }});
  h.server->AddRoute({"POST", "/wake", [](const httplib::Request& req, httplib::Response& res) {
                        res.status = 202;
                        res.set_content("waking " + req.body, "text/plain");
                      }});
  h.Start();
  auto c = h.Client();
  auto r = c.Get("/queries");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "[]");
  r = c.Post("/wake", "now", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 202);
  CHECK(r->body == "waking now");
  r = c.Get("/wake");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(r->get_header_value("Allow") == "POST");
  r = c.Post("/queries", "", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(r->get_header_value("Allow") == "GET, HEAD");
}

TEST_CASE("oversized requests are rejected and the server keeps serving") {
  Harness h;
  h.Start();
  auto c = h.Client();

  const auto long_uri = RawRequest(
      h.server->port(), "GET /livez?" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(StatusOf(long_uri) >= 400);
  CHECK(StatusOf(long_uri) < 500);

  httplib::Headers big{{"X-Big", std::string(20000, 'b')}};
  auto r = c.Get("/livez", big);
  if (r) {
    CHECK(r->status >= 400);
    CHECK(r->status < 500);
  }  // else the server closed the connection: also a rejection

  r = c.Post("/wake", std::string(200 * 1024, 'x'), "text/plain");
  if (r) CHECK(r->status == 413);

  const auto garbage = RawRequest(h.server->port(), "\x01\x02 nonsense\r\n\r\n");
  CHECK((garbage.empty() || StatusOf(garbage) == 400));

  CHECK(h.Status("/livez") == 200);
}

TEST_CASE("many concurrent requests all succeed") {
  Harness h;
  h.Start();
  h.Publish(DbState::kUp);
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  const char* paths[] = {"/livez", "/readyz", "/health", "/health/db", "/metrics"};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto c = h.Client();
      for (int i = 0; i < 25; ++i) {
        auto r = c.Get(paths[(t + i) % 5]);
        (r && r->status == 200 ? ok : failed)++;
      }
    });
  }
  std::thread publisher([&] {
    for (int i = 0; i < 50; ++i) {
      h.Publish(i % 2 ? DbState::kUp : DbState::kDegraded);
      std::this_thread::sleep_for(1ms);
    }
  });
  for (auto& th : threads) th.join();
  publisher.join();
  CHECK(failed == 0);
  CHECK(ok == 16 * 25);
}

TEST_CASE("metrics endpoint answers quickly in the exposition format") {
  Harness h;
  h.Start();
  ProbeResult p;
  p.ok = true;
  p.latency = 2ms;
  p.at = std::chrono::system_clock::now();
  h.metrics.RecordProbe(p);
  const auto start = std::chrono::steady_clock::now();
  auto r = h.Client().Get("/metrics");
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r->body.find("\npg_up 1") != std::string::npos);
  CHECK(r->body.find("pgvigil_build_info{version=\"9.9.9\"} 1") != std::string::npos);
  CHECK(r->body.find("process_resident_memory_bytes") != std::string::npos);
  CHECK(took < 500ms);
}

TEST_CASE("start errors are returned, not thrown") {
  Harness first;
  first.Start();
  auto s = TestSettings();
  s.http.listen = {"127.0.0.1", first.server->port()};
  Harness second(s);
  std::string error;
  CHECK_FALSE(second.server->Start(&error));
  CHECK(error.find("127.0.0.1:" + std::to_string(first.server->port())) != std::string::npos);
  CHECK_FALSE(second.lifecycle.listening);
  CHECK_FALSE(first.server->Start(&error));  // a second Start leaves the running server alone
  CHECK(error == "HTTP server already started");
  CHECK(first.Status("/livez") == 200);

  s.http.listen = {"nonsense.invalid", 9188};  // checked by the config; binding fails here
  Harness third(s);
  CHECK_FALSE(third.server->Start(&error));
  CHECK(error.find("http.listen") != std::string::npos);
  third.server->Stop();  // harmless when never started
}

TEST_CASE("IPv6 loopback and immediate stop") {
  auto s = TestSettings();
  s.http.listen = {"::1", 0};
  Harness h(s);
  std::string error;
  if (!h.server->Start(&error)) {
    WARN("no IPv6 loopback here: " << error);
    return;
  }
  httplib::Client c("::1", h.server->port());
  c.set_connection_timeout(2s);
  auto r = c.Get("/livez");
  REQUIRE(r);
  CHECK(r->status == 200);
  const auto start = std::chrono::steady_clock::now();
  h.server->Stop();
  h.server->Stop();
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK_FALSE(h.lifecycle.listening);
}

TEST_CASE("start then stop at once never hangs") {
  for (int i = 0; i < 20; ++i) {
    Harness h;
    h.Start();
    h.server->Stop();
  }
}
