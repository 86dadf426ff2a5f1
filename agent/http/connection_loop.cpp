#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "http/connection_front.hpp"
#include "http/request_frame.hpp"
#include "util/log.hpp"

// The loop thread of ConnectionFront: accepts adopted sockets, reads requests until they are
// complete, hands them to workers, writes responses, enforces deadlines and caps.
namespace pgvigil::front {
namespace {

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

}  // namespace

void ConnectionFront::Loop() {
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

bool ConnectionFront::StopRequested() {
  std::lock_guard lock(adopt_mu_);
  return stop_requested_;
}

void ConnectionFront::TakeAdopted() {
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

void ConnectionFront::Add(int fd) {
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

void ConnectionFront::OnEvent(Conn& c, uint32_t events) {
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

void ConnectionFront::OnReadable(Conn& c) {
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

void ConnectionFront::Advance(Conn& c) {
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

void ConnectionFront::TakeCompleted() {
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

void ConnectionFront::StartWriting(Conn& c) {
  c.phase = Phase::kWriting;
  c.deadline = Clock::now() + kWriteDeadline;
  Write(c);
}

void ConnectionFront::Write(Conn& c) {
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

void ConnectionFront::Finish(Conn& c) {
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

void ConnectionFront::Drain(Conn& c) {
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

void ConnectionFront::EnterWaiting(Conn& c, Clock::time_point deadline) {
  c.phase = c.in.empty() ? Phase::kWaiting : Phase::kReading;
  c.deadline = c.in.empty() ? deadline : Clock::now() + kRequestDeadline;
  c.continue_sent = false;
  if (!c.evictable) {
    c.evict_pos = evictable_.insert(evictable_.end(), &c);
    c.evictable = true;
  }
  if (!c.peer_closed) SetInterest(c, EPOLLIN);
}

void ConnectionFront::Unlist(Conn& c) {
  if (!c.evictable) return;
  evictable_.erase(c.evict_pos);
  c.evictable = false;
}

bool ConnectionFront::Evict(const std::string* ip) {
  for (Conn* c : evictable_) {
    if (ip != nullptr && c->ip != *ip) continue;
    ++stats.evicted;
    Close(*c);
    return true;
  }
  return false;
}

void ConnectionFront::EnforceByteBudget() {
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

void ConnectionFront::Sweep(Clock::time_point now) {
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

void ConnectionFront::SetInterest(Conn& c, uint32_t events) {
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

void ConnectionFront::Close(Conn& c) {
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

}  // namespace pgvigil::front
