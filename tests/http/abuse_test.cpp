// Hostile clients against a real HttpServer: idle keep-alive sockets, slowloris, oversized
// request lines and headers, random bytes, and a random request storm. /livez must keep
// answering within 1s, status codes must stay sane and no descriptor may leak.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "support/status_line.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;
using pgvigil::test::StatusOf;
using Clock = std::chrono::steady_clock;

namespace {

struct AbuseHarness {
  explicit AbuseHarness(size_t max_connections = 0, size_t per_client = 0) : metrics("9.9.9") {
    settings.http.listen = {"127.0.0.1", 0};
    settings.http.threads = 8;  // the default
    lifecycle.config_loaded = true;
    lifecycle.Beat();
    server = std::make_unique<HttpServer>(settings, snapshots, lifecycle, metrics);
    if (max_connections > 0) server->SetConnectionLimitsForTest(max_connections, per_client);
    std::string error;
    REQUIRE(server->Start(&error));
  }
  int port() const { return server->port(); }

  Settings settings;
  SnapshotStore snapshots;
  Lifecycle lifecycle;
  AgentMetrics metrics;
  std::unique_ptr<HttpServer> server;
};

// A connected socket, or -1. No Catch assertions here: worker threads call it too, and
// Catch's assertion macros are not thread-safe.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may answer and close before reading everything
    sent += static_cast<size_t>(n);
  }
}

// Reads until the peer closes or `timeout` passes, or (with `head_only`) until the response
// head is complete.
std::string ReadFrom(int fd, std::chrono::milliseconds timeout, bool head_only) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[65536];
  while (!head_only || out.find("\r\n\r\n") == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string ReadHead(int fd, std::chrono::milliseconds timeout) {
  return ReadFrom(fd, timeout, true);
}
std::string ReadAll(int fd, std::chrono::milliseconds timeout) {
  return ReadFrom(fd, timeout, false);
}

// One request on a fresh connection; the status (-1 if none) and how long it took.
std::pair<int, Clock::duration> Request(int port, const std::string& bytes,
                                        std::chrono::milliseconds timeout = 3000ms) {
  const auto start = Clock::now();
  const int fd = Connect(port);
  SendAll(fd, bytes);
  const int status = StatusOf(ReadHead(fd, timeout));
  close(fd);
  return {status, Clock::now() - start};
}

int Livez(int port) {
  return Request(port, "GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").first;
}

int OpenFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

// The server closes connections on its own schedule (keep-alive timeout); wait for it.
bool FdsBackTo(int baseline, std::chrono::milliseconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    if (OpenFds() <= baseline) return true;
    std::this_thread::sleep_for(50ms);
  }
  return OpenFds() <= baseline;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

TEST_CASE("idle keep-alive sockets and slowloris clients do not starve /livez") {
  AbuseHarness h;
  const int baseline = OpenFds();

  // 200 clients that send one complete keep-alive request and then go quiet.
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(Connect(h.port()));
    REQUIRE(idle.back() >= 0);
    SendAll(idle.back(), "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  // 50 clients that never finish their headers and trickle one byte every 100ms.
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(Connect(h.port()));
    REQUIRE(slow.back() >= 0);
    SendAll(slow.back(), "GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: ");
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    while (!stop) {
      for (int fd : slow) SendAll(fd, "a");
      std::this_thread::sleep_for(100ms);
    }
  });

  Clock::duration worst{};
  int failures = 0;
  int polls = 0;
  const auto until = Clock::now() + 4s;
  while (Clock::now() < until) {
    auto [status, took] =
        Request(h.port(), "GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1500ms);
    ++polls;
    worst = std::max(worst, took);
    if (status != 200 || took > 1s) ++failures;
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  trickler.join();
  std::printf("abuse: %d /livez polls under 200 idle + 50 slowloris, worst %.1f ms\n", polls,
              Ms(worst));
  CHECK(failures == 0);
  CHECK(Ms(worst) < 1000.0);

  for (int fd : idle) close(fd);
  for (int fd : slow) close(fd);
  CHECK(Livez(h.port()) == 200);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}

TEST_CASE("oversized request lines and headers are rejected and the server keeps serving") {
  AbuseHarness h;
  const auto huge_uri = "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n";
  CHECK(Request(h.port(), huge_uri).first == 414);

  const auto huge_header =
      "GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n";
  const int big = Request(h.port(), huge_header).first;
  CHECK((big == 400 || big == 431));

  // Many small headers adding up to megabytes: rejected or cut off, never buffered whole.
  std::string many = "GET /livez HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 40000; ++i) many += "X-H" + std::to_string(i) + ": vvvvvvvvvvvvvvvvvvvv\r\n";
  many += "\r\n";
  const int flood = Request(h.port(), many).first;
  CHECK((flood == -1 || (flood >= 400 && flood < 500)));

  // A body larger than any endpoint accepts.
  const auto big_body = "POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" +
                        std::string(100000, 'x');
  const int body = Request(h.port(), big_body).first;
  CHECK((body == 413 || body == 405 || body == -1));

  CHECK(Livez(h.port()) == 200);
}

TEST_CASE("random bytes on 200 connections do not crash or wedge the server") {
  AbuseHarness h;
  const int baseline = OpenFds();
  std::mt19937 rng(8);
  std::vector<std::thread> writers;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&h, &refused, seed = rng()] {
      std::mt19937 r(seed);
      for (int i = 0; i < 50; ++i) {
        std::string junk(1 + r() % 8192, '\0');
        for (auto& c : junk) c = static_cast<char>(r());
        if (i % 3 == 0) junk = "GET /" + junk;  // a plausible start, then garbage
        const int fd = Connect(h.port());
        if (fd < 0) {
          ++refused;
          continue;
        }
        SendAll(fd, junk);
        ReadHead(fd, 300ms);  // whatever comes back (often a 400 and a close)
        close(fd);
      }
    });
  }
  for (auto& w : writers) w.join();
  CHECK(refused == 0);
  CHECK(Livez(h.port()) == 200);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}

TEST_CASE("ten thousand random requests get the right status codes and leak nothing") {
  AbuseHarness h;
  const std::vector<std::string> known = {"/livez",     "/readyz", "/startupz",
                                          "/health/db", "/health", "/metrics"};
  const std::vector<std::string> methods = {"GET",   "HEAD",    "POST",  "PUT", "DELETE",
                                            "PATCH", "OPTIONS", "TRACE", "FOO", "PROPFIND"};
  const int baseline = OpenFds();
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::atomic<int> done{0};
  std::mutex examples_mu;  // the first wrong answers, reported from the main thread
  std::string examples;
  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 r(static_cast<unsigned>(100 + t));
      httplib::Client c("127.0.0.1", h.port());
      c.set_keep_alive(true);
      c.set_connection_timeout(2s);
      c.set_read_timeout(5s);
      const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-._~/%";
      for (int i = 0; i < 2500; ++i) {
        httplib::Request req;
        req.method = methods[r() % methods.size()];
        const bool is_known = r() % 2 == 0;
        if (is_known) {
          req.path = known[r() % known.size()];
        } else {
          req.path = "/x";
          for (size_t n = r() % 40; n > 0; --n) req.path += alphabet[r() % alphabet.size()];
        }
        const bool get = req.method == "GET" || req.method == "HEAD";
        // cpp-httplib itself answers 400 and closes for methods outside its list; send those on
        // their own connection so the keep-alive one is not lost.
        const bool exotic = req.method == "FOO" || req.method == "PROPFIND";
        httplib::Client once("127.0.0.1", h.port());
        once.set_connection_timeout(2s);
        once.set_read_timeout(5s);
        auto res = exotic ? once.send(req) : c.send(req);
        if (!res) {
          ++failed;
          continue;
        }
        const int s = res->status;
        bool ok = false;
        if (exotic)
          ok = s == 400;
        else if (s == 400)
          ok = req.path.find('%') != std::string::npos;  // a bad %-escape
        else if (!is_known)
          ok = s == 404;
        else if (!get)
          ok = s == 405;
        else
          ok = s == 200 || s == 503;
        if (!ok && wrong++ < 5) {
          std::lock_guard lock(examples_mu);
          examples += req.method + " " + req.path + " -> " + std::to_string(s) + "\n";
        }
        ++done;
      }
    });
  }
  for (auto& c : clients) c.join();
  std::printf("abuse: 10000 random requests in %.0f ms\n", Ms(Clock::now() - start));
  INFO(examples);
  CHECK(failed == 0);
  CHECK(wrong == 0);
  CHECK(done == 10000);
  CHECK(Livez(h.port()) == 200);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}

namespace {

// Client and server share this process's descriptor limit: 500 hostile sockets need ~1,100.
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// The value of an unlabelled-or-exact series in an exposition text, -1 when absent.
double SeriesValue(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string Body(const std::string& raw) {
  const auto at = raw.find("\r\n\r\n");
  return at == std::string::npos ? "" : raw.substr(at + 4);
}

}  // namespace

TEST_CASE("500 slowloris sockets, reopened as they are closed, leave /livez fast") {
  RaiseDescriptorLimit();
  AbuseHarness h;
  const int baseline = OpenFds();
  constexpr int kSockets = 500;
  // Each socket sends a header byte every 3 s (as the issue's attack did); the server closes
  // it at its 2 s request deadline and the attacker opens a new one at once.
  std::atomic<bool> stop{false};
  std::atomic<int> reopened{0};
  std::thread attacker([&] {
    std::vector<int> fds(kSockets, -1);
    std::vector<Clock::time_point> next(kSockets, Clock::now());
    while (!stop) {
      const auto now = Clock::now();
      for (int i = 0; i < kSockets; ++i) {
        if (fds[i] >= 0) {
          pollfd p{fds[i], POLLIN, 0};
          if (poll(&p, 1, 0) > 0) {  // closed (or answered): reopen
            close(fds[i]);
            fds[i] = -1;
            ++reopened;
          }
        }
        if (fds[i] < 0) {
          fds[i] = Connect(h.port());
          if (fds[i] >= 0) SendAll(fds[i], "GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: ");
          next[i] = now + 3s;
        } else if (now >= next[i]) {
          SendAll(fds[i], "a");
          next[i] = now + 3s;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  });

  std::this_thread::sleep_for(1s);  // let all 500 be open
  std::vector<double> ms;
  int failures = 0;
  const auto until = Clock::now() + 6s;
  while (Clock::now() < until) {
    auto [status, took] =
        Request(h.port(), "GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1500ms);
    if (status != 200) ++failures;
    ms.push_back(Ms(took));
    std::this_thread::sleep_for(20ms);
  }
  stop = true;
  attacker.join();
  std::printf(
      "abuse: %zu /livez under 500 slowloris sockets (%d reopened): p50 %.2f ms, p99 "
      "%.2f ms, worst %.2f ms\n",
      ms.size(), reopened.load(), Percentile(ms, 0.5), Percentile(ms, 0.99), Percentile(ms, 1.0));
  CHECK(failures == 0);
  CHECK(reopened >= kSockets);  // the deadline really closed them (and they came back)
  // A kubelet probe times out after 1 s; the target is 100 ms, with slack for sanitizer builds.
  CHECK(Percentile(ms, 0.99) < 100.0);
  CHECK(Percentile(ms, 1.0) < 500.0);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}

// Sockets the server closed for being past a cap or past the request deadline.
static double Closed(const std::string& metrics) {
  return SeriesValue(metrics, R"(pgvigil_http_connections_dropped_total{reason="evicted"})") +
         SeriesValue(metrics, R"(pgvigil_http_connections_dropped_total{reason="timeout"})");
}

TEST_CASE("at the connection caps the oldest idle sockets make room; probes still answer") {
  // Lower caps than RLIMIT_NOFILE gives, so that sockets reach them well within the 2 s
  // request deadline that would close them anyway.
  AbuseHarness h(/*max_connections=*/300, /*per_client=*/200);
  const int baseline = OpenFds();
  std::vector<int> idle;
  for (int i = 0; i < 400; ++i) {
    const int fd = Connect(h.port());
    if (fd < 0) break;
    idle.push_back(fd);
  }
  CHECK(Livez(h.port()) == 200);
  const auto [status, took] =
      Request(h.port(), "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 3000ms);
  CHECK(status == 200);
  CHECK(Ms(took) < 1000.0);
  // The loop accepts (and evicts) on its own pace: under TSan it may not have reached the last
  // of the 400 sockets yet when the first /metrics answers; read until it has, 5 s at most.
  std::string metrics;
  const auto until = std::chrono::steady_clock::now() + 5s;
  do {
    const int fd = Connect(h.port());
    SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    metrics = Body(ReadAll(fd, 3000ms));
    close(fd);
  } while (Closed(metrics) < 200 && std::chrono::steady_clock::now() < until);
  INFO(metrics.substr(0, 200));
  // At least every socket past the per-client cap of 200 was closed: evicted at the cap, or,
  // when a loaded machine took longer than the 2 s request deadline to open all 400, timed out
  // first (CI at -j4 saw 142 evicted).
  CHECK(Closed(metrics) >= 200);
  CHECK(SeriesValue(metrics, R"(pgvigil_http_connections_dropped_total{reason="evicted"})") > 0);
  CHECK(SeriesValue(metrics, "pgvigil_http_connections_max") == 300);
  CHECK(SeriesValue(metrics, "pgvigil_http_connections") <=
        SeriesValue(metrics, "pgvigil_http_connections_max") + 1);
  for (int f : idle) close(f);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}

TEST_CASE("Range is ignored: thousands of ranges on /metrics get one bounded 200") {
  AbuseHarness h;
  std::string ranges = "bytes=0-";
  for (int i = 0; i < 2700; ++i) ranges += ",0-";
  const int fd = Connect(h.port());
  SendAll(fd,
          "GET /metrics HTTP/1.1\r\nHost: t\r\nRange: " + ranges + "\r\nConnection: close\r\n\r\n");
  const std::string raw = ReadAll(fd, 3000ms);
  close(fd);
  const int one = Connect(h.port());
  SendAll(one, "GET /livez HTTP/1.1\r\nHost: t\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n");
  const std::string single = ReadAll(one, 3000ms);
  close(one);
  CHECK(StatusOf(raw) == 200);
  CHECK(raw.find("multipart/byteranges") == std::string::npos);
  CHECK(raw.size() < 1'000'000);
  CHECK(Body(raw).find("pgvigil_build_info") != std::string::npos);
  CHECK(StatusOf(single) == 200);
  CHECK(Body(single) == "ok\n");
}

TEST_CASE("framing: pipelining, half-close, Expect: 100-continue, chunked and smuggling") {
  AbuseHarness h;
  SECTION("two pipelined requests get two responses in order") {
    const int fd = Connect(h.port());
    SendAll(fd,
            "GET /livez HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n"
            "Connection: close\r\n\r\n");
    const std::string raw = ReadAll(fd, 3000ms);
    close(fd);
    const auto second = raw.find("HTTP/1.1 404");
    CHECK(StatusOf(raw) == 200);
    CHECK(second != std::string::npos);
  }
  SECTION("a client that shuts its write side after the request still gets the answer") {
    const int fd = Connect(h.port());
    SendAll(fd, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
    shutdown(fd, SHUT_WR);
    const std::string raw = ReadAll(fd, 3000ms);
    close(fd);
    CHECK(StatusOf(raw) == 200);
  }
  SECTION("Expect: 100-continue gets the interim answer, then the final one") {
    const int fd = Connect(h.port());
    SendAll(fd,
            "POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n");
    const std::string interim = ReadHead(fd, 1000ms);
    SendAll(fd, "hello");
    const std::string final_answer = ReadAll(fd, 3000ms);
    close(fd);
    CHECK(interim.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0) == 0);
    CHECK(StatusOf(final_answer) == 405);                           // /livez is GET only
    CHECK(final_answer.find("HTTP/1.1 100") == std::string::npos);  // not twice
  }
  SECTION("a chunked body is refused with 411") {
    CHECK(Request(h.port(),
                  "POST /livez HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n0\r\n\r\n")
              .first == 411);
  }
  SECTION("two different Content-Lengths are refused with 400") {
    CHECK(Request(h.port(),
                  "POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                  "Content-Length: 2\r\n\r\nab")
              .first == 400);
  }
  CHECK(Livez(h.port()) == 200);
}

TEST_CASE("bytes held for unfinished requests stay within the front's budget") {
  RaiseDescriptorLimit();
  AbuseHarness h;
  const int baseline = OpenFds();
  // 700 clients each declare a 64 KiB body and send all but a few bytes of it: 44 MiB would be
  // held if nothing bounded it; the front keeps 32 MiB at most and closes the oldest.
  const std::string head =
      "POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n" + std::string(65000, 'x');
  std::vector<int> fds;
  for (int i = 0; i < 700; ++i) {
    const int fd = Connect(h.port());
    if (fd < 0) break;
    SendAll(fd, head);
    fds.push_back(fd);
  }
  CHECK(Livez(h.port()) == 200);
  const int fd = Connect(h.port());
  SendAll(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  const std::string metrics = Body(ReadAll(fd, 3000ms));
  close(fd);
  const double evicted =
      SeriesValue(metrics, R"(pgvigil_http_connections_dropped_total{reason="evicted"})");
  const double timed_out =
      SeriesValue(metrics, R"(pgvigil_http_connections_dropped_total{reason="timeout"})");
  std::printf("abuse: 700 unfinished 64 KiB bodies: %.0f evicted, %.0f timed out\n", evicted,
              timed_out);
  CHECK(evicted + timed_out >= 180);  // 44 MiB - 32 MiB = ~180 requests' worth
  for (int f : fds) close(f);
  CHECK(FdsBackTo(baseline, 10s));  // 2 s request deadline, slack for sanitizer builds
}
