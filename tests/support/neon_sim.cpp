#include "support/neon_sim.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace pgvigil::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;
constexpr std::uint32_t kCancelRequest = 80877102;

bool ReadFull(int fd, void* buf, std::size_t n, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string ErrorResponse(const std::string& message) {
  std::string fields;
  auto add = [&fields](char code, const std::string& value) {
    fields.push_back(code);
    fields += value;
    fields.push_back('\0');
  };
  add('S', "FATAL");
  add('V', "FATAL");
  add('C', "XX000");
  add('M', message);
  fields.push_back('\0');
  std::uint32_t len = htonl(static_cast<std::uint32_t>(fields.size() + 4));
  std::string msg = "E";
  msg.append(reinterpret_cast<const char*>(&len), 4);
  return msg + fields;
}

// Reads the client's startup sequence (answering SSL/GSS requests with 'N') and sends the error.
void Refuse(int fd, const std::string& message) {
  for (int i = 0; i < 3; ++i) {
    std::uint32_t header[2];
    if (!ReadFull(fd, header, 8, 5s)) return;
    std::uint32_t len = ntohl(header[0]);
    std::uint32_t code = ntohl(header[1]);
    if (len < 8 || len > 10000) return;
    std::string rest(len - 8, '\0');
    if (len > 8 && !ReadFull(fd, rest.data(), rest.size(), 5s)) return;
    if (code == kSslRequest || code == kGssEncRequest) {
      if (!WriteFull(fd, "N", 1)) return;
      continue;
    }
    if (code == kCancelRequest) return;
    std::string err = ErrorResponse(message);
    WriteFull(fd, err.data(), err.size());
    return;
  }
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

struct NeonSim::Api {
  httplib::Server server;
  std::thread thread;
};

NeonSim::NeonSim(PgServer& server, NeonSimOptions options)
    : server_(server), options_(std::move(options)) {
  last_activity_ = Clock::now();
  last_active_wall_ = std::chrono::system_clock::now();
  if (options_.start_suspended) {
    server_.Stop();
    state_ = "idle";
  } else if (!server_.running()) {
    server_.Start();
  }
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("neon sim: socket failed");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
    close(listen_fd_);
    throw std::runtime_error(std::string("neon sim: bind/listen failed: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  StartApi();
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
}

NeonSim::~NeonSim() {
  stopping_ = true;
  cv_.notify_all();
  if (accept_thread_.joinable()) accept_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  {
    std::lock_guard lock(workers_mu_);
    for (auto& w : workers_) {
      if (w->client_fd >= 0) shutdown(w->client_fd, SHUT_RDWR);
    }
  }
  ReapWorkers(true);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (api_) {
    api_->server.stop();
    if (api_->thread.joinable()) api_->thread.join();
  }
}

std::string NeonSim::Url(const std::string& dbname) const {
  std::string url = server_.Url(dbname);
  std::string from = ":" + std::to_string(server_.port()) + "/";
  auto pos = url.rfind(from);
  if (pos == std::string::npos) throw std::runtime_error("neon sim: unexpected server URL");
  return url.replace(pos, from.size(), ":" + std::to_string(port_) + "/");
}

std::string NeonSim::ApiUrl() const { return "http://127.0.0.1:" + std::to_string(api_port_); }

std::string NeonSim::compute_state() const {
  std::lock_guard lock(mu_);
  return state_;
}

bool NeonSim::WaitForState(const std::string& state, std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (compute_state() == state) return true;
    std::this_thread::sleep_for(20ms);
  }
  return compute_state() == state;
}

void NeonSim::SuspendNow() {
  std::lock_guard lock(mu_);
  if (state_ != "active" || open_ > 0) return;
  server_.Stop();
  state_ = "idle";
  ++suspends_;
}

void NeonSim::SetAutoSuspend(bool on) {
  std::lock_guard lock(mu_);
  auto_suspend_ = on;
  last_activity_ = Clock::now();
}

int NeonSim::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}
int NeonSim::suspends() const {
  std::lock_guard lock(mu_);
  return suspends_;
}
int NeonSim::cold_starts() const {
  std::lock_guard lock(mu_);
  return cold_starts_;
}
std::optional<std::chrono::milliseconds> NeonSim::last_cold_start() const {
  std::lock_guard lock(mu_);
  return last_cold_start_;
}
std::chrono::system_clock::time_point NeonSim::last_active() const {
  std::lock_guard lock(mu_);
  return last_active_wall_;
}

void NeonSim::RefuseWith(std::string message) {
  std::lock_guard lock(mu_);
  refusal_ = std::move(message);
}
void NeonSim::StopRefusing() {
  std::lock_guard lock(mu_);
  refusal_.reset();
}
void NeonSim::SetApiRateLimited(bool on, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  rate_limited_ = on;
  retry_after_seconds_ = retry_after_seconds;
}
void NeonSim::SetApiStatus(int status) {
  std::lock_guard lock(mu_);
  forced_status_ = status;
}

void NeonSim::AcceptLoop() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, 50);
    ReapWorkers(false);
    if (r <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++accepted_;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(workers_mu_);
    if (static_cast<int>(workers_.size()) >= options_.max_connections) {
      Refuse(fd, kNeonTooManyAttemptsError);
      close(fd);
      continue;
    }
    auto w = std::make_unique<Worker>();
    w->client_fd = fd;
    Worker* raw = w.get();
    workers_.push_back(std::move(w));
    raw->thread = std::thread([this, raw] { HandleConnection(raw); });
  }
}

void NeonSim::ReapWorkers(bool all) {
  std::list<std::unique_ptr<Worker>> finished;
  {
    std::lock_guard lock(workers_mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : finished) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void NeonSim::MonitorLoop() {
  while (!stopping_) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, 50ms);
      if (stopping_) break;
      if (auto_suspend_ && options_.suspend_after.count() > 0 && state_ == "active" && open_ == 0 &&
          Clock::now() - last_activity_ >= options_.suspend_after) {
        try {
          server_.Stop();
          state_ = "idle";
          ++suspends_;
        } catch (const std::exception&) {
          // Leave it running; the next turn tries again.
        }
      }
    }
  }
}

bool NeonSim::EnsureAwake() {
  std::unique_lock lock(mu_);
  ++open_;
  last_activity_ = Clock::now();
  last_active_wall_ = std::chrono::system_clock::now();
  if (state_ == "active") return true;
  if (state_ == "init") {
    cv_.wait(lock, [this] { return state_ != "init" || stopping_; });
    return state_ == "active";
  }
  state_ = "init";
  auto begin = Clock::now();
  lock.unlock();
  bool ok = true;
  auto delay_end = begin + options_.cold_start_delay;
  while (Clock::now() < delay_end && !stopping_) std::this_thread::sleep_for(10ms);
  if (!stopping_) {
    try {
      server_.Start();
    } catch (const std::exception&) {
      ok = false;
    }
  }
  lock.lock();
  if (ok && !stopping_) {
    state_ = "active";
    ++cold_starts_;
    last_cold_start_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
  } else {
    state_ = "idle";
    ok = false;
  }
  last_activity_ = Clock::now();
  cv_.notify_all();
  return ok;
}

void NeonSim::HandleConnection(Worker* w) {
  int client = w->client_fd;
  std::optional<std::string> refusal;
  {
    std::lock_guard lock(mu_);
    refusal = refusal_;
  }
  if (refusal) {
    Refuse(client, *refusal);
  } else {
    int backend = EnsureAwake() ? ConnectLoopback(server_.port()) : -1;
    if (backend < 0) {
      Refuse(client, kNeonWakingError);
    } else {
      char buf[16384];
      bool open = true;
      while (open && !stopping_) {
        pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
        int r = poll(fds, 2, 100);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        for (int i = 0; i < 2 && open; ++i) {
          if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
          int from = i == 0 ? client : backend;
          int to = i == 0 ? backend : client;
          ssize_t n = recv(from, buf, sizeof(buf), 0);
          if (n <= 0 || !WriteFull(to, buf, static_cast<std::size_t>(n))) open = false;
        }
        std::lock_guard lock(mu_);
        last_activity_ = Clock::now();
        last_active_wall_ = std::chrono::system_clock::now();
      }
      close(backend);
    }
    std::lock_guard lock(mu_);
    --open_;
    last_activity_ = Clock::now();
  }
  {
    std::lock_guard lock(workers_mu_);
    shutdown(client, SHUT_RDWR);
    close(client);
    w->client_fd = -1;
  }
  w->done = true;
}

void NeonSim::StartApi() {
  api_ = std::make_unique<Api>();
  api_->server.Get(R"(/projects/([^/]+)/endpoints/([^/]+))", [this](const httplib::Request& req,
                                                                    httplib::Response& res) {
    ++api_requests_;
    std::lock_guard lock(mu_);
    auto json_error = [&res](int status, const std::string& msg) {
      res.status = status;
      res.set_content(nlohmann::json{{"message", msg}}.dump(), "application/json");
    };
    if (req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      return json_error(401, "authentication required");
    }
    if (forced_status_ != 0) return json_error(forced_status_, "forced");
    if (rate_limited_) {
      res.set_header("Retry-After", std::to_string(retry_after_seconds_));
      return json_error(429, "rate limit exceeded");
    }
    if (req.matches[1] != options_.project_id || req.matches[2] != options_.endpoint_id) {
      return json_error(404, "not found");
    }
    long long timeout = (options_.suspend_after.count() + 999) / 1000;
    nlohmann::json ep = {{"id", options_.endpoint_id},
                         {"project_id", options_.project_id},
                         {"current_state", state_},
                         {"suspend_timeout_seconds", timeout},
                         {"last_active", Rfc3339(last_active_wall_)}};
    res.set_content(nlohmann::json{{"endpoint", ep}}.dump(), "application/json");
  });
  api_port_ = api_->server.bind_to_any_port("127.0.0.1");
  if (api_port_ <= 0) throw std::runtime_error("neon sim: API bind failed");
  api_->thread = std::thread([this] { api_->server.listen_after_bind(); });
}

}  // namespace pgvigil::test
