#pragma once
// GuardedServer: cpp-httplib's Server with its connection handling replaced by one event loop,
// so that idle, slow or hostile clients cost a descriptor and a small buffer, never a thread.
//
// The loop (epoll) accepts nothing itself: cpp-httplib's accept thread hands each socket over.
// The loop reads a request until it is complete (head, and a body of declared length), within
// kRequestDeadline of its first byte and within byte caps; only then does a worker run it
// through cpp-httplib's parser, router and handlers, writing the response into memory; the loop
// writes it out. Workers never wait on a socket, so /livez answers within a handler's time
// whatever number of clients trickle bytes (slowloris), sit idle or refuse to read. Probe paths
// (/livez, /readyz, /startupz, /health, /health/db) go ahead of other requests in the queue.
// Caps: open connections (global, from RLIMIT_NOFILE, and per client address); at a cap the
// oldest connection that is only waiting or reading is closed to make room, else the new one
// gets 503. Range requests are served whole (RFC 9110 lets a server ignore Range).
//
// Pinned to cpp-httplib 0.11.4 (Debian 12): it overrides the private virtual
// Server::process_and_close_socket and calls the protected Server::process_request. A
// static_assert on CPPHTTPLIB_VERSION (guarded_server.cpp) stops the build on any other version,
// tests/http/httplib_pin_test.cpp says so by name, and tests/http/abuse_test.cpp exercises the
// hand-over. The front itself is connection_front.hpp.
// Thread-safety: construct, then cpp-httplib's listen/stop as for httplib::Server.
#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace pgvigil {

// Counters of the connection front; read at any time from any thread.
struct FrontStats {
  std::atomic<int64_t> open{0};          // connections open now
  std::atomic<uint64_t> accepted{0};     // every connection handed over
  std::atomic<uint64_t> rejected{0};     // answered 503 at once: every slot was busy
  std::atomic<uint64_t> evicted{0};      // closed to make room at a cap while waiting/reading
  std::atomic<uint64_t> timed_out{0};    // request, keep-alive or write deadline passed
  std::atomic<uint64_t> refused_bad{0};  // too large, unframed or malformed before parsing
  std::atomic<uint64_t> requests{0};     // requests run through cpp-httplib
};

namespace front {
class ConnectionFront;
}

// The cpp-httplib release whose internals GuardedServer overrides (Debian 12's package).
inline constexpr std::string_view kPinnedHttplibVersion = "0.11.4";

class GuardedServer final : public httplib::Server {
 public:
  // `workers` threads run requests (http.threads). Limits come from RLIMIT_NOFILE.
  explicit GuardedServer(size_t workers);
  ~GuardedServer() override;

  const FrontStats& stats() const;
  size_t max_connections() const;
  size_t max_connections_per_client() const;
  // Smaller caps, so that tests reach them; before listening.
  void SetLimitsForTest(size_t max_connections, size_t per_client);

 private:
  bool process_and_close_socket(socket_t sock) override;

  std::unique_ptr<front::ConnectionFront> front_;
};

}  // namespace pgvigil
