#pragma once
// Test harness: a loopback peer that speaks just enough of the PostgreSQL v3 protocol
// (https://www.postgresql.org/docs/15/protocol-message-formats.html) to let libpq connect
// without a password (AuthenticationOk) and then answers the first statement with one DataRow
// that declares `row_bytes` (1 GiB by default) and streams it as fast as the client reads: a
// hostile or broken server. SSLRequest/GSSENCRequest get 'N'. Serves one connection at a time;
// counts what it sent. The destructor stops the thread and closes everything.
#include <atomic>
#include <cstdint>
#include <thread>

namespace pgvigil::test {

class HugeRowPeer {
 public:
  explicit HugeRowPeer(uint64_t row_bytes = uint64_t{1} << 30);
  ~HugeRowPeer();
  HugeRowPeer(const HugeRowPeer&) = delete;
  HugeRowPeer& operator=(const HugeRowPeer&) = delete;

  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  // The most bytes of row data any one connection took before it was closed.
  uint64_t max_sent() const { return max_sent_.load(); }

 private:
  void Serve();
  void ServeOne(int fd);
  uint64_t row_bytes_;
  int fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<uint64_t> max_sent_{0};
  std::thread thread_;
};

}  // namespace pgvigil::test
