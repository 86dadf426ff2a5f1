#include "support/huge_row_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgvigil::test {
namespace {

void Put32(std::string& out, uint32_t v) {
  const uint32_t n = htonl(v);
  out.append(reinterpret_cast<const char*>(&n), 4);
}
void Put16(std::string& out, uint16_t v) {
  const uint16_t n = htons(v);
  out.append(reinterpret_cast<const char*>(&n), 2);
}
std::string Message(char type, const std::string& body) {
  std::string m(1, type);
  Put32(m, static_cast<uint32_t>(body.size() + 4));
  return m + body;
}

// Reads exactly n bytes unless `stop` is set or the peer goes; false then.
bool ReadExact(int fd, char* buf, size_t n, const std::atomic<bool>& stop) {
  size_t got = 0;
  while (got < n && !stop) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return got == n;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

uint32_t Get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

}  // namespace

HugeRowPeer::HugeRowPeer(uint64_t row_bytes) : row_bytes_(row_bytes) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(fd_, 16) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      pipe(wake_) != 0) {
    throw std::runtime_error("HugeRowPeer: cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

HugeRowPeer::~HugeRowPeer() {
  stop_ = true;
  [[maybe_unused]] auto n = write(wake_[1], "x", 1);
  thread_.join();
  close(fd_);
  close(wake_[0]);
  close(wake_[1]);
}

void HugeRowPeer::Serve() {
  while (!stop_) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(p, 2, -1) <= 0 || p[1].revents != 0) continue;
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ++connections_;
    ServeOne(c);
    close(c);
  }
}

void HugeRowPeer::ServeOne(int fd) {
  // Startup, after any SSLRequest / GSSENCRequest (answered 'N': no encryption here).
  std::vector<char> buf;
  for (;;) {
    char head[4];
    if (!ReadExact(fd, head, 4, stop_)) return;
    const uint32_t len = Get32(head);
    if (len < 8 || len > 10000) return;
    buf.resize(len - 4);
    if (!ReadExact(fd, buf.data(), buf.size(), stop_)) return;
    const uint32_t code = Get32(buf.data());
    if (code == 80877103 || code == 80877104) {
      if (!SendAll(fd, "N")) return;
      continue;
    }
    break;  // the StartupMessage
  }
  std::string hello = Message('R', std::string("\0\0\0\0", 4));  // AuthenticationOk
  for (const auto& [k, v] : {std::pair<std::string, std::string>{"server_version", "15.0"},
                             {"client_encoding", "UTF8"},
                             {"standard_conforming_strings", "on"},
                             {"integer_datetimes", "on"}}) {
    hello += Message('S', k + std::string(1, '\0') + v + std::string(1, '\0'));
  }
  std::string key;
  Put32(key, 4242);
  Put32(key, 7);
  hello += Message('K', key) + Message('Z', "I");
  if (!SendAll(fd, hello)) return;

  // The first statement, up to its Sync (extended protocol) or a simple Query.
  for (;;) {
    char type;
    char head[4];
    if (!ReadExact(fd, &type, 1, stop_) || !ReadExact(fd, head, 4, stop_)) return;
    const uint32_t len = Get32(head);
    if (len < 4 || len > (1u << 20)) return;
    buf.resize(len - 4);
    if (!ReadExact(fd, buf.data(), buf.size(), stop_)) return;
    if (type == 'S' || type == 'Q') break;
  }
  std::string answer = Message('1', "") + Message('2', "");  // ParseComplete, BindComplete
  std::string desc;
  Put16(desc, 1);
  desc += std::string("?column?") + '\0';
  Put32(desc, 0);   // table oid
  Put16(desc, 0);   // attnum
  Put32(desc, 25);  // text
  Put16(desc, 0xFFFF);
  Put32(desc, 0xFFFFFFFF);
  Put16(desc, 0);
  answer += Message('T', desc);
  // DataRow: one column of row_bytes_, declared up front, then streamed.
  answer += 'D';
  Put32(answer, static_cast<uint32_t>(std::min<uint64_t>(row_bytes_ + 10, 0x7FFFFFFF)));
  Put16(answer, 1);
  Put32(answer, static_cast<uint32_t>(std::min<uint64_t>(row_bytes_, 0x7FFFFFF0)));
  if (!SendAll(fd, answer)) return;
  const std::string chunk(64 * 1024, 'x');
  uint64_t sent = 0;
  while (!stop_ && sent < row_bytes_) {
    const ssize_t n = send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<uint64_t>(n);
    if (sent > max_sent_) max_sent_ = sent;
  }
}

}  // namespace pgvigil::test
