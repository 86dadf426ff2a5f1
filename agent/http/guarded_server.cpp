#include "http/guarded_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/request_frame.hpp"
#include "util/log.hpp"

static_assert(std::string_view(CPPHTTPLIB_VERSION) == "0.11.4",
              "GuardedServer overrides cpp-httplib 0.11.4 internals (process_and_close_socket, "
              "process_request); check them against this version before changing the pin");

namespace pgvigil {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kRequestDeadline = 2000ms;  // a whole request, from its first byte (or accept)
constexpr auto kKeepAlive = 1000ms;        // idle between requests
// Past half the connection cap, keep-alive gets this long and every response closes.
constexpr auto kKeepAliveUnderPressure = 250ms;
constexpr auto kWriteDeadline = 5s;      // a response must be taken by the client within this
constexpr auto kLingerDeadline = 500ms;  // reading what a client sent after its last request
constexpr auto kShutdownGrace = 1s;      // in-flight responses on Stop
constexpr auto kSweepEvery = 50ms;       // deadline resolution
constexpr size_t kKeepAliveMaxRequests = 100;
constexpr size_t kMaxConnectionsCeiling = 4096;
constexpr size_t kReservedDescriptors = 256;  // libpq, DNS, /proc reads, logs
constexpr size_t kMinConnections = 64;
// Bytes held for all clients together (requests being read, responses being written); past it
// the oldest waiting or reading connections are closed first.
constexpr size_t kMaxBufferedBytes = 32u << 20;
constexpr size_t kReadChunk = 16 * 1024;

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

void Address(int (*fn)(int, sockaddr*, socklen_t*), int fd, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (fn(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
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

enum class Phase {
  kWaiting,  // no byte of the next request yet (fresh, or idle keep-alive)
  kReading,  // part of a request is buffered
  kRunning,  // a worker owns it
  kWriting,  // the response is being written
  kClosing,  // write side shut; reading what the client still sends, then close
};

struct Conn {
  int fd = -1;
  std::string ip;
  int port = 0;
  std::string local_ip;
  int local_port = 0;
  Phase phase = Phase::kWaiting;
  Clock::time_point deadline;
  std::string in;   // received, not yet consumed by a request
  std::string out;  // the response being written
  size_t out_pos = 0;
  size_t served = 0;
  bool close_after = false;  // once `out` is written
  bool peer_closed = false;  // the client shut its write side
  size_t consumed = 0;       // by the request a worker just ran
  bool continue_sent = false;
  bool closed = false;
  bool evictable = false;
  std::list<Conn*>::iterator evict_pos;
  uint32_t interest = 0;  // epoll events registered; 0 = not registered
};

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

std::string Canned(int status, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (status == 503) out += "Retry-After: 1\r\n";
  return out + "\r\n" + std::string(body);
}

}  // namespace

// The event loop and the workers (see the header). Owned by GuardedServer.
class ConnectionFront {
 public:
  using Serve = std::function<bool(httplib::Stream&, bool close_connection, bool& closed)>;

  ConnectionFront(size_t workers, Serve serve)
      : serve_(std::move(serve)),
        workers_count_(std::max<size_t>(1, workers)),
        max_conns_(MaxConnections()),
        max_per_client_(std::max<size_t>(16, max_conns_ / 2)) {}

  ~ConnectionFront() { Stop(); }

  FrontStats stats;
  size_t max_connections() const { return max_conns_; }
  size_t max_per_client() const { return max_per_client_; }
  void SetLimits(size_t max, size_t per_client) {  // before Start
    max_conns_ = std::max<size_t>(1, max);
    max_per_client_ = std::max<size_t>(1, per_client);
  }

  // Starts the loop and the workers; false (logged) when the kernel refuses epoll/eventfd.
  bool Start() {
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

  // Any thread (cpp-httplib's accept thread): the loop takes the socket over.
  void Adopt(int fd) {
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

  // Stops reading, lets running requests finish and their responses go out (bounded by
  // kShutdownGrace), joins every thread and closes every connection. Idempotent.
  void Stop() {
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

 private:
  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  }

  // ----- the loop thread ------------------------------------------------------------------

  void Loop() {
    std::vector<epoll_event> events(256);
    auto next_sweep = Clock::now() + kSweepEvery;
    Clock::time_point stop_deadline;
    while (true) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_sweep - Clock::now());
      const int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                               static_cast<int>(std::max<int64_t>(0, wait.count())));
      if (n < 0 && errno != EINTR) {
        LogError("HTTP event loop failed", {{"error", std::strerror(errno)}});
        std::this_thread::sleep_for(kSweepEvery);
      }
      for (int i = 0; i < n; ++i) {
        auto* conn = static_cast<Conn*>(events[i].data.ptr);
        if (conn == nullptr) {
          uint64_t count;
          [[maybe_unused]] auto r = ::read(wake_, &count, sizeof count);
          continue;
        }
        if (!conn->closed) OnEvent(*conn, events[i].events);
      }
      TakeAdopted();
      TakeCompleted();
      const auto now = Clock::now();
      if (now >= next_sweep) {
        Sweep(now);
        next_sweep = now + kSweepEvery;
      }
      if (!stopping_ && StopRequested()) {
        stopping_ = true;
        stop_deadline = now + kShutdownGrace;
        std::vector<Conn*> idle;
        for (auto& [fd, c] : conns_) {
          if (c->phase != Phase::kRunning && c->phase != Phase::kWriting) idle.push_back(c.get());
        }
        for (Conn* c : idle) Close(*c);
      }
      graveyard_.clear();
      if (stopping_ && (conns_.empty() || now >= stop_deadline)) break;
    }
    // Connections still running stay for Stop, which closes them once the workers are joined.
    std::vector<Conn*> rest;
    for (auto& [fd, c] : conns_) {
      if (c->phase != Phase::kRunning) rest.push_back(c.get());
    }
    for (Conn* c : rest) Close(*c);
    graveyard_.clear();
  }

  bool StopRequested() {
    std::lock_guard lock(adopt_mu_);
    return stop_requested_;
  }

  void TakeAdopted() {
    std::vector<int> fds;
    {
      std::lock_guard lock(adopt_mu_);
      fds.swap(adopted_);
    }
    for (int fd : fds) {
      if (stopping_) {
        ::close(fd);
      } else {
        Add(fd);
      }
    }
  }

  void Add(int fd) {
    ++stats.accepted;
    const int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int yes = 1;  // responses are small: Nagle + delayed ACK would stall each one ~40 ms
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    auto conn = std::make_unique<Conn>();
    conn->fd = fd;
    Address(::getpeername, fd, conn->ip, conn->port);
    Address(::getsockname, fd, conn->local_ip, conn->local_port);
    if ((conns_.size() >= max_conns_ && !Evict(nullptr)) ||
        (per_client_[conn->ip] >= max_per_client_ && !Evict(&conn->ip))) {
      ++stats.rejected;
      static const std::string busy = Canned(503, "Service Unavailable", "busy\n");
      [[maybe_unused]] auto sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
      ::close(fd);
      return;
    }
    ++per_client_[conn->ip];
    Conn& c = *conn;
    conns_.emplace(fd, std::move(conn));
    stats.open = static_cast<int64_t>(conns_.size());
    UpdatePressure();
    EnterWaiting(c, Clock::now() + kRequestDeadline);
  }

  void OnEvent(Conn& c, uint32_t events) {
    switch (c.phase) {
      case Phase::kWaiting:
      case Phase::kReading:
        OnReadable(c);
        break;
      case Phase::kWriting:
        if ((events & (EPOLLERR | EPOLLHUP)) != 0 && (events & EPOLLOUT) == 0) {
          Close(c);
        } else {
          Write(c);
        }
        break;
      case Phase::kClosing:
        Drain(c);
        break;
      case Phase::kRunning:
        break;  // not registered while running
    }
  }

  void OnReadable(Conn& c) {
    char buf[kReadChunk];
    while (c.in.size() < kMaxRequestBytes) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        if (c.phase == Phase::kWaiting) {
          c.phase = Phase::kReading;
          c.deadline = Clock::now() + kRequestDeadline;
        }
        c.in.append(buf, static_cast<size_t>(n));
        buffered_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        Close(c);
        return;
      }
      c.peer_closed = true;  // EOF: a request already buffered is still answered
      SetInterest(c, 0);
      break;
    }
    Advance(c);
    EnforceByteBudget();
  }

  // Decides what the buffered bytes of a waiting/reading connection allow.
  void Advance(Conn& c) {
    const RequestFrame f = FrameRequest(c.in);
    switch (f.verdict) {
      case FrameVerdict::kIncomplete:
        if (c.peer_closed) {
          Close(c);
          return;
        }
        if (f.expects_continue && !c.continue_sent) {
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          [[maybe_unused]] auto sent = ::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL);
          c.continue_sent = true;
        }
        return;
      case FrameVerdict::kRefuse:
        ++stats.refused_bad;
        Unlist(c);
        c.out = Canned(f.status, f.reason, f.reason + "\n");
        c.out_pos = 0;
        buffered_ += c.out.size();
        c.close_after = true;
        StartWriting(c);
        return;
      case FrameVerdict::kComplete:
        Unlist(c);
        c.phase = Phase::kRunning;
        SetInterest(c, 0);
        ++stats.requests;
        {
          std::lock_guard lock(jobs_mu_);
          (f.probe ? probe_jobs_ : other_jobs_).push_back(&c);
        }
        jobs_cv_.notify_one();
        return;
    }
  }

  void TakeCompleted() {
    std::vector<Conn*> done;
    {
      std::lock_guard lock(jobs_mu_);
      done.swap(completed_);
    }
    for (Conn* c : done) {
      buffered_ = buffered_ - std::min(buffered_, c->consumed) + c->out.size();
      c->consumed = 0;
      c->out_pos = 0;
      StartWriting(*c);
    }
    if (!done.empty()) EnforceByteBudget();
  }

  void StartWriting(Conn& c) {
    c.phase = Phase::kWriting;
    c.deadline = Clock::now() + kWriteDeadline;
    Write(c);
  }

  void Write(Conn& c) {
    while (c.out_pos < c.out.size()) {
      const ssize_t n =
          ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
        buffered_ -= std::min(buffered_, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        SetInterest(c, EPOLLOUT);
        return;
      }
      Close(c);
      return;
    }
    std::string().swap(c.out);
    c.out_pos = 0;
    if (c.close_after || stopping_ || c.peer_closed) {
      Finish(c);
      return;
    }
    const auto idle = pressure_.load() ? kKeepAliveUnderPressure : kKeepAlive;
    EnterWaiting(c, Clock::now() + idle);
    if (!c.in.empty()) Advance(c);  // a pipelined request
  }

  // Closes after the last response; when the client sent more than was read, shuts the write
  // side first and reads the rest, so the close does not reset the response away (RST).
  void Finish(Conn& c) {
    int pending = 0;
    if (c.in.empty() && !c.peer_closed && ioctl(c.fd, FIONREAD, &pending) == 0 && pending == 0) {
      Close(c);
      return;
    }
    if (c.peer_closed) {
      Close(c);
      return;
    }
    ::shutdown(c.fd, SHUT_WR);
    buffered_ -= std::min(buffered_, c.in.size());
    std::string().swap(c.in);
    c.phase = Phase::kClosing;
    c.deadline = Clock::now() + kLingerDeadline;
    SetInterest(c, EPOLLIN);
  }

  void Drain(Conn& c) {
    char buf[kReadChunk];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      Close(c);
      return;
    }
  }

  void EnterWaiting(Conn& c, Clock::time_point deadline) {
    c.phase = c.in.empty() ? Phase::kWaiting : Phase::kReading;
    c.deadline = c.in.empty() ? deadline : Clock::now() + kRequestDeadline;
    c.continue_sent = false;
    if (!c.evictable) {
      c.evict_pos = evictable_.insert(evictable_.end(), &c);
      c.evictable = true;
    }
    if (!c.peer_closed) SetInterest(c, EPOLLIN);
  }

  void Unlist(Conn& c) {
    if (!c.evictable) return;
    evictable_.erase(c.evict_pos);
    c.evictable = false;
  }

  // Closes the oldest connection that is only waiting or reading (from `ip` when given).
  bool Evict(const std::string* ip) {
    for (Conn* c : evictable_) {
      if (ip != nullptr && c->ip != *ip) continue;
      ++stats.evicted;
      Close(*c);
      return true;
    }
    return false;
  }

  void EnforceByteBudget() {
    // Over the budget: first the oldest requests still being read (they hold bytes)...
    for (auto it = evictable_.begin(); buffered_ > kMaxBufferedBytes && it != evictable_.end();) {
      Conn* c = *it++;  // Close unlists c
      if (c->in.empty()) continue;
      ++stats.evicted;
      Close(*c);
    }
    // ...then responses clients do not take, oldest deadline first.
    while (buffered_ > kMaxBufferedBytes) {
      Conn* oldest = nullptr;
      for (auto& [fd, c] : conns_) {
        if (c->phase == Phase::kWriting && (oldest == nullptr || c->deadline < oldest->deadline)) {
          oldest = c.get();
        }
      }
      if (oldest == nullptr) break;
      ++stats.evicted;
      Close(*oldest);
    }
  }

  void Sweep(Clock::time_point now) {
    std::vector<Conn*> expired;
    for (auto& [fd, c] : conns_) {
      if (c->phase == Phase::kRunning || now < c->deadline) continue;
      if (stopping_ && c->phase == Phase::kWriting) continue;  // the grace decides
      expired.push_back(c.get());
    }
    for (Conn* c : expired) {
      // An idle keep-alive connection reaching its end is normal; anything else is a timeout.
      if (c->phase == Phase::kReading || c->phase == Phase::kWriting ||
          (c->phase == Phase::kWaiting && c->served == 0)) {
        ++stats.timed_out;
      }
      Close(*c);
    }
  }

  void SetInterest(Conn& c, uint32_t events) {
    if (events == c.interest) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    if (events == 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, &ev);
    } else {
      epoll_ctl(ep_, c.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
    }
    c.interest = events;
  }

  void Close(Conn& c) {
    if (c.closed) return;
    Unlist(c);
    c.closed = true;
    buffered_ -= std::min(buffered_, c.in.size() + (c.out.size() - c.out_pos));
    if (auto it = per_client_.find(c.ip); it != per_client_.end() && --it->second == 0) {
      per_client_.erase(it);
    }
    ::close(c.fd);  // also leaves the epoll set
    auto node = conns_.extract(c.fd);
    graveyard_.push_back(std::move(node.mapped()));  // events later in this batch may name it
    stats.open = static_cast<int64_t>(conns_.size());
    UpdatePressure();
  }

  void UpdatePressure() { pressure_ = conns_.size() > max_conns_ / 2; }

  // ----- workers --------------------------------------------------------------------------

  void Work() {
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

  void Run(Conn& c) {
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

  const Serve serve_;
  const size_t workers_count_;
  size_t max_conns_;
  size_t max_per_client_;

  std::mutex control_mu_;  // Start/Stop
  bool started_ = false;
  int ep_ = -1;
  int wake_ = -1;
  std::thread loop_;
  std::vector<std::thread> workers_;

  std::mutex adopt_mu_;
  std::vector<int> adopted_;
  bool accepting_ = false;
  bool stop_requested_ = false;

  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Conn*> probe_jobs_;
  std::deque<Conn*> other_jobs_;
  std::vector<Conn*> completed_;
  bool workers_stop_ = false;

  std::atomic<bool> pressure_{false};  // read by workers

  // Loop thread only.
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::list<Conn*> evictable_;  // waiting or reading, oldest first
  std::unordered_map<std::string, size_t> per_client_;
  size_t buffered_ = 0;
  bool stopping_ = false;
};

namespace {

// cpp-httplib asks for a task queue when it starts listening and shuts it down when it stops;
// each accepted socket arrives through enqueue, on the accept thread, and goes to the front.
class FrontQueue final : public httplib::TaskQueue {
 public:
  explicit FrontQueue(ConnectionFront& front) : front_(front) { front_.Start(); }
  void enqueue(std::function<void()> fn) override { fn(); }  // runs process_and_close_socket
  void shutdown() override { front_.Stop(); }

 private:
  ConnectionFront& front_;
};

}  // namespace

GuardedServer::GuardedServer(size_t workers) {
  front_ = std::make_unique<ConnectionFront>(
      workers, [this](httplib::Stream& strm, bool close_connection, bool& closed) {
        return process_request(strm, close_connection, closed, [](httplib::Request& req) {
          // Served whole: thousands of overlapping ranges would make a tiny response huge.
          req.ranges.clear();
          req.headers.erase("Range");
          // The front answered "100 Continue" itself while it read the body.
          req.headers.erase("Expect");
        });
      });
  new_task_queue = [this] { return new FrontQueue(*front_); };
  // Only for the Keep-Alive header cpp-httplib writes: say what the front really does.
  set_keep_alive_timeout(std::chrono::duration_cast<std::chrono::seconds>(kKeepAlive).count());
  set_keep_alive_max_count(kKeepAliveMaxRequests);
}

GuardedServer::~GuardedServer() { front_->Stop(); }

const FrontStats& GuardedServer::stats() const { return front_->stats; }
size_t GuardedServer::max_connections() const { return front_->max_connections(); }
size_t GuardedServer::max_connections_per_client() const { return front_->max_per_client(); }
void GuardedServer::SetLimitsForTest(size_t max, size_t per_client) {
  front_->SetLimits(max, per_client);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  front_->Adopt(sock);
  return true;
}

}  // namespace pgvigil
