#include "http/server.hpp"

#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

#include "http/guarded_server.hpp"
#include "http/request_frame.hpp"
#include "util/log.hpp"

namespace pgvigil {

namespace {

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr int kMaxThreads = 64;
// Connections the kernel queues before accept(): a burst larger than this drops SYNs, and the
// client waits a 1 s retransmit (a kubelet probe's whole timeout). 128 overflowed in CI when 500
// slowloris sockets, closed together by the request deadline, came back at once on a loaded
// machine (worst /livez 1016 ms); net.core.somaxconn (4096 on Debian 12) caps it.
constexpr int kListenBacklog = 1024;

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

HttpServer::HttpServer(const Settings& settings, const SnapshotStore& snapshots,
                       Lifecycle& lifecycle, AgentMetrics& metrics)
    : settings_(settings), snapshots_(snapshots), lifecycle_(lifecycle), metrics_(metrics) {
  auto& registry = metrics_.registry();
  connections_open_ = &prometheus::BuildGauge()
                           .Name("pgvigil_http_connections")
                           .Help("HTTP connections open now (probes, scrapes, /health)")
                           .Register(registry)
                           .Add({});
  connections_max_ = &prometheus::BuildGauge()
                          .Name("pgvigil_http_connections_max")
                          .Help(
                              "HTTP connections held open at the most (from RLIMIT_NOFILE); past "
                              "it the oldest idle or slow one is closed")
                          .Register(registry)
                          .Add({});
  auto& dropped = prometheus::BuildCounter()
                      .Name("pgvigil_http_connections_dropped_total")
                      .Help(
                          "HTTP connections closed by pgvigil: busy (every slot in use, 503), "
                          "evicted (oldest idle or slow one, at a cap), timeout (request, "
                          "keep-alive or write deadline), malformed (refused before parsing)")
                      .Register(registry);
  for (const char* reason : {"busy", "evicted", "timeout", "malformed"}) {
    dropped_[reason] = {&dropped.Add({{"reason", reason}}), 0};
  }
  AddBuiltinRoutes();
}

void HttpServer::SyncFrontMetrics() {
  if (!server_) return;
  const FrontStats& st = server_->stats();
  connections_open_->Set(static_cast<double>(st.open.load()));
  connections_max_->Set(static_cast<double>(server_->max_connections()));
  std::lock_guard lock(front_metrics_mu_);
  auto advance = [&](const char* reason, uint64_t now) {
    auto& [counter, seen] = dropped_[reason];
    if (now > seen) counter->Increment(static_cast<double>(now - seen));
    seen = now;
  };
  advance("busy", st.rejected.load());
  advance("evicted", st.evicted.load());
  advance("timeout", st.timed_out.load());
  advance("malformed", st.refused_bad.load());
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
    SyncFrontMetrics();
    res.status = 200;
    res.body = metrics_.Serialize();  // moved, not copied as set_content would (~0.5 MB at scale)
    res.set_header("Content-Type", kMetricsType);
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
  // Parsed and checked by the config (config/listen_address.hpp).
  const std::string& host = settings_.http.listen.host;
  const int port = settings_.http.listen.port;

  const size_t threads = static_cast<size_t>(std::clamp(settings_.http.threads, 1, kMaxThreads));
  server_ = std::make_unique<GuardedServer>(threads);
  if (test_limits_.first > 0) server_->SetLimitsForTest(test_limits_.first, test_limits_.second);
  server_->set_payload_max_length(kMaxRequestBody);
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
