#include "support/tcp_listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace pgvigil::test {

TcpListener::TcpListener(Mode mode, std::string reply) : mode_(mode), reply_(std::move(reply)) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 64) != 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd_);
    throw std::runtime_error("listen on loopback failed");
  }
  port_ = ntohs(addr.sin_port);
  if (mode_ == Mode::kBlackhole) return;  // the backlog completes handshakes; nobody accepts
  if (pipe2(wake_, O_CLOEXEC) != 0) {
    close(fd_);
    throw std::runtime_error("pipe failed");
  }
  thread_ = std::thread([this] { Serve(); });
}

TcpListener::~TcpListener() {
  if (thread_.joinable()) {
    (void)!write(wake_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void TcpListener::Serve() {
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ++accepted_;
    if (mode_ == Mode::kGarbage) {
      // Wait for the client's first packet (SSLRequest or StartupMessage), then answer nonsense.
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 2000) > 0) {
        char buf[512];
        (void)!read(c, buf, sizeof buf);
      }
      (void)!send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    }
    close(c);
  }
}

}  // namespace pgvigil::test
