#pragma once
// Test harness: loopback TCP peers that are not PostgreSQL, for failure-path tests.
// kBlackhole: listens but never accepts; the kernel completes the handshake, nobody ever speaks.
// kGarbage: accepts and answers every connection with a non-PostgreSQL reply, then closes.
// kCloseImmediately: accepts and closes at once (a reset before any reply).
// Not thread-safe; one test owns each instance. The destructor stops the thread and closes all.
#include <atomic>
#include <string>
#include <thread>

namespace pgvigil::test {

class TcpListener {
 public:
  enum class Mode { kBlackhole, kGarbage, kCloseImmediately };
  explicit TcpListener(Mode mode, std::string reply = "HTTP/1.1 400 Bad Request\r\n\r\n");
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void Serve();
  Mode mode_;
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

}  // namespace pgvigil::test
