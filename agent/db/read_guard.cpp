#include "db/read_guard.hpp"

#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_received (glibc's lacks it)
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

namespace pgvigil {

struct ReadGuard::Watch {
  int fd;
  std::chrono::steady_clock::time_point deadline;
  std::size_t max_bytes;
  std::optional<uint64_t> start_bytes;  // TCP_INFO bytes_received when guarding began
  std::atomic<std::size_t> received{0};
  std::atomic<Trip> trip{Trip::kNone};
};

namespace {

using namespace std::chrono_literals;
constexpr auto kCheckEvery = 5ms;
// The reader's own poll ends a wait at the deadline; the cut is for reads that never wait.
constexpr auto kDeadlineGrace = 20ms;

std::optional<uint64_t> BytesReceived(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received) {
    return std::nullopt;  // not TCP (a Unix socket), or a kernel without the field
  }
  return info.tcpi_bytes_received;
}

// Replaces `fd` with a socket whose reads return end-of-file; the original socket closes (the
// peer sees the connection end), the descriptor number stays valid for libpq.
void CutOff(int fd) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    ::shutdown(fd, SHUT_RDWR);
    return;
  }
  ::close(pair[1]);
  dup2(pair[0], fd);
  ::close(pair[0]);
}

class Watcher {
 public:
  static Watcher& Instance() {
    static Watcher w;
    return w;
  }

  void Add(const std::shared_ptr<ReadGuard::Watch>& w) {
    {
      std::lock_guard lock(mu_);
      watches_.push_back(w);
      if (!thread_.joinable()) thread_ = std::jthread([this](std::stop_token st) { Run(st); });
    }
    cv_.notify_one();
  }

  // After Remove returns, the watcher no longer touches the descriptor.
  void Remove(const std::shared_ptr<ReadGuard::Watch>& w) {
    std::lock_guard lock(mu_);
    watches_.remove(w);
  }

  ~Watcher() {
    if (thread_.joinable()) {
      thread_.request_stop();
      cv_.notify_all();
      thread_.join();
    }
  }

 private:
  void Run(std::stop_token st) {
    std::unique_lock lock(mu_);
    while (!st.stop_requested()) {
      if (watches_.empty()) {
        cv_.wait(lock, st, [this] { return !watches_.empty(); });
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      for (const auto& w : watches_) {
        if (w->trip != ReadGuard::Trip::kNone) continue;
        if (w->start_bytes) {
          if (auto now_bytes = BytesReceived(w->fd)) {
            w->received = static_cast<std::size_t>(*now_bytes - *w->start_bytes);
          }
        }
        if (w->received > w->max_bytes) {
          w->trip = ReadGuard::Trip::kTooLarge;
        } else if (now >= w->deadline + kDeadlineGrace) {
          w->trip = ReadGuard::Trip::kDeadline;
        } else {
          continue;
        }
        CutOff(w->fd);  // under mu_: Remove cannot return while this runs
      }
      cv_.wait_for(lock, st, kCheckEvery, [] { return false; });
    }
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::list<std::shared_ptr<ReadGuard::Watch>> watches_;
  std::jthread thread_;
};

}  // namespace

ReadGuard::ReadGuard(int fd, std::chrono::steady_clock::time_point deadline, std::size_t max_bytes)
    : watch_(std::make_shared<Watch>()) {
  watch_->fd = fd;
  watch_->deadline = deadline;
  watch_->max_bytes = max_bytes;
  watch_->start_bytes = BytesReceived(fd);
  Watcher::Instance().Add(watch_);
}

ReadGuard::~ReadGuard() { Watcher::Instance().Remove(watch_); }

ReadGuard::Trip ReadGuard::tripped() const { return watch_->trip.load(); }

std::size_t ReadGuard::received() const { return watch_->received.load(); }

}  // namespace pgvigil
