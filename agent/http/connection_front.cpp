#include "http/connection_front.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/log.hpp"

namespace pgvigil::front {
namespace {

// A request that is wholly in memory, seen by cpp-httplib as a socket stream: reads come from
// Conn::in, writes go to Conn::out. Never touches the socket.
class RequestStream final : public httplib::Stream {
 public:
  explicit RequestStream(Conn& c) : c_(c) {}
  size_t consumed() const { return pos_; }

  bool is_readable() const override { return pos_ < c_.in.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, c_.in.size() - pos_);
    std::memcpy(ptr, c_.in.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    c_.out.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.ip;
    port = c_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local_ip;
    port = c_.local_port;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  Conn& c_;
  size_t pos_ = 0;
};

}  // namespace

size_t MaxConnections() {
  rlimit rl{};
  size_t soft = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    soft = static_cast<size_t>(rl.rlim_cur);
  } else if (rl.rlim_cur == RLIM_INFINITY) {
    soft = kMaxConnectionsCeiling + kReservedDescriptors;
  }
  const size_t usable = soft > kReservedDescriptors ? soft - kReservedDescriptors : 0;
  return std::clamp(usable, kMinConnections, kMaxConnectionsCeiling);
}

std::string Canned(int status, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (status == 503) out += "Retry-After: 1\r\n";
  return out + "\r\n" + std::string(body);
}

bool ConnectionFront::Start() {
  std::lock_guard lock(control_mu_);
  if (started_) return true;
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (ep_ < 0 || wake_ < 0) {
    LogError("HTTP connection front cannot start", {{"error", std::strerror(errno)}});
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
  started_ = true;
  {
    std::lock_guard adopt(adopt_mu_);
    accepting_ = true;
    stop_requested_ = false;
  }
  loop_ = std::thread([this] { Loop(); });
  for (size_t i = 0; i < workers_count_; ++i) workers_.emplace_back([this] { Work(); });
  return true;
}

void ConnectionFront::Adopt(int fd) {
  {
    std::lock_guard lock(adopt_mu_);
    if (accepting_ && !stop_requested_) {
      adopted_.push_back(fd);
      fd = -1;
    }
  }
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  Wake();
}

void ConnectionFront::Stop() {
  std::lock_guard control(control_mu_);
  if (!started_) return;
  {
    std::lock_guard lock(adopt_mu_);
    stop_requested_ = true;
  }
  Wake();
  loop_.join();
  {
    std::lock_guard lock(adopt_mu_);
    accepting_ = false;
  }
  {
    std::lock_guard lock(jobs_mu_);
    workers_stop_ = true;
  }
  jobs_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  // Single-threaded from here: whatever the loop left (running past the grace) goes now.
  for (auto& [fd, conn] : conns_) ::close(fd);
  conns_.clear();
  stats.open = 0;
  for (int fd : adopted_) ::close(fd);
  adopted_.clear();
  ::close(ep_);
  ::close(wake_);
  started_ = false;
}

void ConnectionFront::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
}

void ConnectionFront::Work() {
  for (;;) {
    Conn* c = nullptr;
    {
      std::unique_lock lock(jobs_mu_);
      jobs_cv_.wait(
          lock, [this] { return workers_stop_ || !probe_jobs_.empty() || !other_jobs_.empty(); });
      if (workers_stop_) return;
      auto& queue = probe_jobs_.empty() ? other_jobs_ : probe_jobs_;
      c = queue.front();
      queue.pop_front();
    }
    Run(*c);
    {
      std::lock_guard lock(jobs_mu_);
      completed_.push_back(c);
    }
    Wake();
  }
}

void ConnectionFront::Run(Conn& c) {
  RequestStream stream(c);
  const bool close_connection =
      c.served + 1 >= kKeepAliveMaxRequests || c.peer_closed || pressure_.load();
  bool closed = false;
  bool ok = false;
  try {
    ok = serve_(stream, close_connection, closed);
  } catch (...) {
    ok = false;  // cpp-httplib catches handler exceptions; this is a last resort
  }
  c.in.erase(0, stream.consumed());
  c.consumed = stream.consumed();
  ++c.served;
  c.close_after = !ok || closed || close_connection;
  if (c.out.empty()) c.out = Canned(500, "Internal Server Error", "internal error\n");
}

}  // namespace pgvigil::front
