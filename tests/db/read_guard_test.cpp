// ReadGuard against a real loopback TCP peer that never stops sending: a reader that never
// waits (as libpq inside PQconsumeInput) is cut off at the deadline or past the byte budget.
#include "db/read_guard.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

using namespace pgvigil;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A connected loopback TCP pair: {client, server}.
std::pair<int, int> TcpPair() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(listener, 1) == 0);
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const int server = accept(listener, nullptr, nullptr);
  close(listener);
  REQUIRE(server >= 0);
  fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
  return {client, server};
}

// Reads as libpq's read loop does: never gives up while data keeps coming; ends at EOF/error.
size_t ReadUntilEnd(int fd, Clock::time_point give_up) {
  char buf[65536];
  size_t total = 0;
  while (Clock::now() < give_up) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      total += static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 1);
    } else {
      break;
    }
  }
  return total;
}

struct Flood {
  explicit Flood(int fd)
      : thread([this, fd] {
          const std::string chunk(65536, 'x');
          while (!stop && send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
          }
        }) {}
  ~Flood() {
    stop = true;
    thread.join();
  }
  std::atomic<bool> stop{false};
  std::thread thread;
};

}  // namespace

TEST_CASE("ReadGuard cuts a reader off at its deadline", "[db][read_guard]") {
  auto [client, server] = TcpPair();
  size_t read = 0;
  Clock::duration took{};
  ReadGuard::Trip trip;
  {
    Flood flood(server);
    const auto start = Clock::now();
    ReadGuard guard(client, start + 200ms, size_t{1} << 40);
    read = ReadUntilEnd(client, start + 10s);
    took = Clock::now() - start;
    trip = guard.tripped();
    shutdown(server, SHUT_RDWR);  // the flood stops too
  }
  CHECK(trip == ReadGuard::Trip::kDeadline);
  CHECK(took >= 200ms);
  CHECK(took < 1s);
  CHECK(read > 0);
  close(client);
  close(server);
}

TEST_CASE("ReadGuard cuts a reader off past its byte budget", "[db][read_guard]") {
  auto [client, server] = TcpPair();
  ReadGuard::Trip trip;
  size_t read = 0;
  size_t counted = 0;
  {
    Flood flood(server);
    ReadGuard guard(client, Clock::now() + 10s, 1 << 20);
    read = ReadUntilEnd(client, Clock::now() + 10s);
    trip = guard.tripped();
    counted = guard.received();
    shutdown(server, SHUT_RDWR);
  }
  CHECK(trip == ReadGuard::Trip::kTooLarge);
  CHECK(counted > (1u << 20));
  CHECK(read < (256u << 20));  // cut off within a few checks, not at the end of the flood
  close(client);
  close(server);
}

TEST_CASE("ReadGuard leaves a reader that finishes in time alone", "[db][read_guard]") {
  auto [client, server] = TcpPair();
  {
    ReadGuard guard(client, Clock::now() + 50ms, 1 << 20);
    REQUIRE(send(server, "hello", 5, 0) == 5);
    std::this_thread::sleep_for(10ms);
    char buf[16];
    CHECK(recv(client, buf, sizeof buf, 0) == 5);
    CHECK(guard.tripped() == ReadGuard::Trip::kNone);
  }
  std::this_thread::sleep_for(100ms);  // past the deadline, but no longer guarded
  REQUIRE(send(server, "again", 5, 0) == 5);
  std::this_thread::sleep_for(10ms);
  char buf[16];
  CHECK(recv(client, buf, sizeof buf, 0) == 5);
  close(client);
  close(server);
}
