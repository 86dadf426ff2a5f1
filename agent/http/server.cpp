#include "http/server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <set>

#include "util/log.hpp"

namespace pgvigil {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr size_t kMaxPayload = 64 * 1024;  // we accept no real uploads; small POSTs at most
constexpr time_t kWriteTimeoutSeconds = 5;
// cpp-httplib serves a connection on one worker thread from accept to close, so every idle or
// slow client pins a thread. The limits below bound how long any one client can do that.
// Short: an idle keep-alive connection holds a worker thread and delays shutdown.
constexpr auto kKeepAlive = std::chrono::milliseconds(1000);
// When more connections are open than http.threads, a fresh connection gets this long to send
// its first byte, and a keep-alive connection is closed with its next response (or after this
// long without a request, when the pressure began after a response that promised keep-alive).
constexpr auto kFirstByteUnderPressure = std::chrono::milliseconds(250);
// The whole request (line, headers, body) must arrive within this, however it is trickled
// (slowloris), and may not exceed this many bytes (cpp-httplib buffers header lines unbounded).
constexpr auto kRequestDeadline = std::chrono::milliseconds(2000);
constexpr size_t kRequestByteBudget = kMaxPayload + 64 * 1024;
constexpr size_t kKeepAliveMaxRequests = 100;
constexpr int kMaxThreads = 64;
// The worker pool grows on demand up to this (idle workers above http.threads retire), so a
// few hundred hostile sockets cannot starve the probes; beyond it connections queue, and beyond
// kMaxQueued they get an immediate 503 and a close.
constexpr size_t kMaxWorkers = 128;
constexpr size_t kMaxQueued = 512;
constexpr auto kWorkerIdleRetire = std::chrono::seconds(5);
constexpr int kListenBacklog = 128;

using Clock = std::chrono::steady_clock;

int MillisUntil(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on fd until the deadline; false on timeout, error or hang-up-only.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, MillisUntil(deadline));
    if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

// A socket stream whose reads share one deadline and byte budget per request, so a client
// trickling bytes cannot hold a worker longer than kRequestDeadline. Buffered, because
// cpp-httplib reads header lines one byte at a time.
class DeadlineStream final : public httplib::Stream {
 public:
  explicit DeadlineStream(int sock) : sock_(sock) {}

  // Arms the deadline and budget for the next request.
  void BeginRequest() {
    deadline_ = Clock::now() + kRequestDeadline;
    budget_ = kRequestByteBudget;
  }
  bool Buffered() const { return pos_ < len_; }
  // Waits (idle, between requests) for the next request's first byte.
  bool WaitForRequest(Clock::duration wait) {
    return Buffered() || WaitFor(sock_, POLLIN, Clock::now() + wait);
  }

  bool is_readable() const override { return Buffered() || WaitFor(sock_, POLLIN, deadline_); }
  bool is_writable() const override {
    return WaitFor(sock_, POLLOUT, Clock::now() + std::chrono::seconds(kWriteTimeoutSeconds));
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!Buffered()) {
      if (budget_ == 0) return 0;  // over budget: look like end of stream
      if (!WaitFor(sock_, POLLIN, deadline_)) return -1;
      ssize_t n;
      do {
        n = ::recv(sock_, buf_, std::min(sizeof buf_, budget_), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      pos_ = 0;
      len_ = static_cast<size_t>(n);
      budget_ -= len_;
    }
    const size_t n = std::min(size, len_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(::getsockname, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  template <typename Fn>
  void Address(Fn fn, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (fn(sock_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int sock_;
  Clock::time_point deadline_ = Clock::now();
  size_t budget_ = 0;
  char buf_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
};

// Set while the accept thread runs a connection it could not queue: the connection is
// answered 503 and closed instead of served (TaskQueue only sees an opaque task).
thread_local bool t_reject_connection = false;

// cpp-httplib's TaskQueue with `min` resident workers that grows to `max` under load and
// bounds its queue. Thread-safe (enqueue comes from the accept thread, shutdown after it).
class ElasticPool final : public httplib::TaskQueue {
 public:
  ElasticPool(size_t min, size_t max) : min_(min), max_(std::max(min, max)) {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < min_; ++i) SpawnLocked();
  }
  ~ElasticPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    JoinRetiredLocked();
    if (shutdown_ || jobs_.size() >= kMaxQueued) {
      lock.unlock();
      t_reject_connection = true;
      fn();
      t_reject_connection = false;
      return;
    }
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < max_) SpawnLocked();
    cv_.notify_one();
  }

  void shutdown() override {
    std::list<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
      threads.swap(threads_);
      threads.splice(threads.end(), retired_);
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
  }

  // More connections in service or waiting than the configured resident workers.
  bool UnderPressure() const { return pressure_.load(std::memory_order_relaxed); }

 private:
  void SpawnLocked() {
    threads_.emplace_back();
    auto self = std::prev(threads_.end());
    *self = std::thread([this, self] { Work(self); });
  }

  void JoinRetiredLocked() {
    for (auto& t : retired_) t.join();  // they have left Work: joins do not wait
    retired_.clear();
  }

  void UpdatePressureLocked() {
    pressure_.store(busy_ + jobs_.size() > min_, std::memory_order_relaxed);
  }

  void Work(std::list<std::thread>::iterator self) {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      const bool got =
          cv_.wait_for(lock, kWorkerIdleRetire, [this] { return shutdown_ || !jobs_.empty(); });
      --idle_;
      if (!jobs_.empty()) {
        auto fn = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
        UpdatePressureLocked();
        lock.unlock();
        fn();
        lock.lock();
        --busy_;
        UpdatePressureLocked();
        continue;
      }
      if (shutdown_) return;
      if (!got && threads_.size() > min_) {
        retired_.splice(retired_.end(), threads_, self);
        return;
      }
    }
  }

  const size_t min_;
  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::list<std::thread> retired_;  // exited (or exiting) workers, joined by the next enqueue
  size_t idle_ = 0;
  size_t busy_ = 0;
  bool shutdown_ = false;
  std::atomic<bool> pressure_{false};
};

// httplib::Server with its per-connection loop replaced (keep-alive, request deadline, byte
// budget, load shedding); parsing, routing and responses stay cpp-httplib's.
class GuardedServer final : public httplib::Server {
 public:
  GuardedServer(size_t threads) {
    new_task_queue = [this, threads] {
      auto* pool = new ElasticPool(threads, std::max(threads, kMaxWorkers));
      pool_.store(pool);
      return pool;
    };
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    if (t_reject_connection) {
      static constexpr char kBusy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nConnection: close\r\n"
          "Retry-After: 1\r\n\r\nbusy\n";
      [[maybe_unused]] auto n = ::send(sock, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(sock);
      return false;
    }
    // Responses are small: without TCP_NODELAY, Nagle and delayed ACKs stall each ~40ms.
    int yes = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    const ElasticPool* pool = pool_.load();
    auto pressure = [pool] { return pool != nullptr && pool->UnderPressure(); };

    DeadlineStream strm(sock);
    bool ret = false;
    for (size_t served = 0; served < kKeepAliveMaxRequests; ++served) {
      if (svr_sock_ == INVALID_SOCKET) break;  // stopping
      // Under pressure every response says "Connection: close", so a connection still open
      // here under pressure was promised keep-alive: closing it without a grace would race the
      // client's next request, which it may already be sending.
      const Clock::duration wait =
          pressure() ? Clock::duration(kFirstByteUnderPressure) : Clock::duration(kKeepAlive);
      if (!strm.WaitForRequest(wait)) break;
      strm.BeginRequest();
      const bool close_connection = served + 1 == kKeepAliveMaxRequests || pressure();
      bool connection_closed = false;
      ret = process_request(strm, close_connection, connection_closed, nullptr);
      if (!ret || connection_closed || close_connection) break;
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
  }

  std::atomic<const ElasticPool*> pool_{nullptr};
};

struct Verdict {
  bool ok = true;
  std::string reason;  // why not, for the response body
};

Verdict Liveness(const Lifecycle& lc) {
  if (lc.SchedulerAlive()) return {};
  const auto last = lc.heartbeat_ns.load(std::memory_order_relaxed);
  if (last == 0) return {false, "scheduler has not started"};
  const auto age =
      std::chrono::steady_clock::now().time_since_epoch() - std::chrono::nanoseconds(last);
  return {
      false,
      "scheduler heartbeat is stale: last beat " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
          "s ago, limit " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::seconds>(lc.heartbeat_stale_after).count()) +
          "s"};
}

std::string DbNotUsable(const Snapshot& s) {
  std::string r = "database not usable: " + std::string(DbStateName(s.state));
  if (!s.reason.empty()) r += " (" + s.reason + ")";
  return r;
}

Verdict Readiness(const Settings& settings, const Lifecycle& lc, const Snapshot& s) {
  if (!lc.config_loaded) return {false, "configuration not loaded"};
  if (!lc.listening) return {false, "listeners not up"};
  if (lc.shutting_down) return {false, "shutting down"};
  if (settings.http.readyz_requires_db && !DbStateUsable(s.state)) return {false, DbNotUsable(s)};
  return {};
}

Verdict Startup(const Settings& settings, const Lifecycle& lc, const Snapshot& s) {
  if (!lc.config_loaded) return {false, "configuration not loaded"};
  if (!lc.listening) return {false, "listeners not up"};
  if (settings.http.startupz_requires_probe && !s.any_probe_finished) {
    return {false, "waiting for the first probe to finish"};
  }
  return {};
}

void Answer(httplib::Response& res, const Verdict& v) {
  res.set_header("Cache-Control", "no-store");
  res.status = v.ok ? 200 : 503;
  res.set_content(v.ok ? std::string("ok\n") : v.reason + "\n", kText);
}

bool StandardMethod(const std::string& m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "DELETE" || m == "PATCH" ||
         m == "OPTIONS";
}

}  // namespace

bool ParseListenAddress(const std::string& listen, std::string* host, int* port,
                        std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) {
      *error = "\"" + listen + "\" " + why +
               "; use HOST:PORT, e.g. \"0.0.0.0:9188\", \"127.0.0.1:0\" or \"[::1]:9188\"";
    }
    return false;
  };
  std::string h;
  std::string p;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string::npos) return fail("has no closing ']'");
    if (close + 1 >= listen.size() || listen[close + 1] != ':') {
      return fail("has no :PORT after the IPv6 address");
    }
    h = listen.substr(1, close - 1);
    p = listen.substr(close + 2);
    if (h.empty()) return fail("has an empty IPv6 address");
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) return fail("has no :PORT");
    h = listen.substr(0, colon);
    p = listen.substr(colon + 1);
    if (h.find(':') != std::string::npos) return fail("needs brackets around an IPv6 address");
  }
  int value = -1;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value < 0 || value > 65535) {
    return fail("has an invalid port (0..65535)");
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = value;
  return true;
}

HttpServer::HttpServer(const Settings& settings, const SnapshotStore& snapshots,
                       Lifecycle& lifecycle, AgentMetrics& metrics)
    : settings_(settings), snapshots_(snapshots), lifecycle_(lifecycle), metrics_(metrics) {
  AddBuiltinRoutes();
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::AddRoute(HttpRoute route) { routes_.push_back(std::move(route)); }

void HttpServer::AddBuiltinRoutes() {
  auto get = [this](std::string path, auto handler) {
    routes_.push_back(HttpRoute{"GET", std::move(path), std::move(handler)});
  };
  get("/livez", [this](const httplib::Request&, httplib::Response& res) {
    Answer(res, Liveness(lifecycle_));
  });
  get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    Answer(res, Readiness(settings_, lifecycle_, *snapshots_.Current()));
  });
  get("/startupz", [this](const httplib::Request&, httplib::Response& res) {
    Answer(res, Startup(settings_, lifecycle_, *snapshots_.Current()));
  });
  get("/health/db", [this](const httplib::Request&, httplib::Response& res) {
    const auto snap = snapshots_.Current();
    Answer(res,
           DbStateUsable(snap->state) ? Verdict{true, ""} : Verdict{false, DbNotUsable(*snap)});
    if (res.status == 200) res.set_content(std::string(DbStateName(snap->state)) + "\n", kText);
  });
  get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const auto snap = snapshots_.Current();
    const bool ready = Readiness(settings_, lifecycle_, *snap).ok;
    res.set_header("Cache-Control", "no-store");
    res.status = HealthStatusName(snap->state) == "unavailable" ? 503 : 200;
    res.set_content(RenderHealthJson(*snap, lifecycle_, ready), "application/json");
  });
  get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics_.Serialize(), kMetricsType);
  });
}

void HttpServer::Dispatch(const httplib::Request& req, httplib::Response& res) const {
  // cpp-httplib hands HEAD to GET handlers and drops the body itself.
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::set<std::string> allowed;
  for (const auto& route : routes_) {
    if (route.path != req.path) continue;
    if (route.method == method) {
      route.handler(req, res);
      return;
    }
    allowed.insert(route.method);
    if (route.method == "GET") allowed.insert("HEAD");
  }
  if (allowed.empty()) {
    res.status = 404;
    res.set_content("not found\n", kText);
    return;
  }
  std::string allow;
  for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  res.status = 405;
  res.set_header("Allow", allow);
  res.set_content("method not allowed; allowed: " + allow + "\n", kText);
}

bool HttpServer::Start(std::string* error) {
  auto fail = [&](const std::string& message) {
    if (error) *error = message;
    server_.reset();
    return false;
  };
  if (server_) {
    if (error) *error = "HTTP server already started";
    return false;
  }
  std::string host;
  int port = 0;
  std::string parse_error;
  if (!ParseListenAddress(settings_.http.listen, &host, &port, &parse_error)) {
    return fail("http.listen: " + parse_error);
  }

  const size_t threads = static_cast<size_t>(std::clamp(settings_.http.threads, 1, kMaxThreads));
  server_ = std::make_unique<GuardedServer>(threads);
  server_->set_payload_max_length(kMaxPayload);
  // Reads are bounded by GuardedServer's per-request deadline; these set SO_RCVTIMEO and
  // SO_SNDTIMEO on accepted sockets as a backstop.
  server_->set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(kRequestDeadline));
  server_->set_write_timeout(kWriteTimeoutSeconds, 0);
  server_->set_tcp_nodelay(true);
  // cpp-httplib's default sets SO_REUSEPORT, which lets a second pgvigil bind the same port and
  // silently take half the probes; SO_REUSEADDR alone still allows a quick restart.
  // It also listens with a backlog of 5: a burst of probes and scrapes overflows that, SYNs
  // are dropped and clients wait a 1s retransmit (a kubelet probe times out after 1s by
  // default). Remember the socket so the backlog can be raised once it is bound.
  auto listen_fd = std::make_shared<std::atomic<int>>(-1);
  server_->set_socket_options([listen_fd](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd->store(sock);
  });

  const httplib::Server::Handler dispatch = [this](const httplib::Request& req,
                                                   httplib::Response& res) { Dispatch(req, res); };
  // Every standard method goes through Dispatch so a known path answers 405, not 404.
  server_->Get(".*", dispatch);
  server_->Post(".*", dispatch);
  server_->Put(".*", dispatch);
  server_->Patch(".*", dispatch);
  server_->Delete(".*", dispatch);
  server_->Options(".*", dispatch);
  // Methods cpp-httplib has no handler table for (TRACE, CONNECT) would get a bare 400.
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (StandardMethod(req.method)) return httplib::Server::HandlerResponse::Unhandled;
    Dispatch(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  // Library-made errors (400, 413, 414, ...) get a short text body instead of none.
  const httplib::Server::HandlerWithResponse on_error = [](const httplib::Request&,
                                                           httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    res.set_content("HTTP " + std::to_string(res.status) + "\n", kText);
    return httplib::Server::HandlerResponse::Handled;
  };
  server_->set_error_handler(on_error);
  // Never echo exception text to clients (cpp-httplib's default puts it in a header).
  server_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        LogError("HTTP handler failed", {{"path", req.path}, {"error", what}});
        res.status = 500;
        res.set_content("internal error\n", kText);
      });
  server_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    LogDebug("http request", {{"method", req.method},
                              {"path", req.path},
                              {"status", std::to_string(res.status)},
                              {"remote", req.remote_addr}});
  });

  const std::string where = host.find(':') != std::string::npos
                                ? "[" + host + "]:" + std::to_string(port)
                                : host + ":" + std::to_string(port);
  errno = 0;
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else {
    port_ = server_->bind_to_port(host, port) ? port : -1;
  }
  if (port_ <= 0) {
    const int err = errno;
    port_ = 0;
    return fail("cannot listen on " + where +
                (err != 0 ? std::string(": ") + std::strerror(err) : std::string()) +
                "; check that the address is local and the port is free (http.listen)");
  }

  // listen() again on a listening socket only updates its backlog.
  if (const int fd = listen_fd->load(); fd >= 0) ::listen(fd, kListenBacklog);

  thread_done_ = false;
  thread_ = std::thread([this] {
    try {
      server_->listen_after_bind();
    } catch (const std::exception& e) {
      LogError("HTTP server stopped unexpectedly", {{"error", e.what()}});
    } catch (...) {
      LogError("HTTP server stopped unexpectedly");
    }
    thread_done_ = true;
  });
  // stop() is a no-op until the accept loop runs, which listen_after_bind enters at once; wait
  // for it so that Stop can never miss it and hang in join.
  while (!server_->is_running() && !thread_done_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server_->is_running()) {
    thread_.join();
    return fail("HTTP server on " + where + " did not start accepting connections");
  }
  lifecycle_.listening = true;
  return true;
}

void HttpServer::Stop() {
  if (!server_) return;
  lifecycle_.listening = false;
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace pgvigil
