#include "http/guarded_server.hpp"

#include <string_view>

#include "http/connection_front.hpp"

// The one place that depends on cpp-httplib's internals: keep the pin and the test
// (tests/http/httplib_pin_test.cpp) in step with Debian's package.
static_assert(std::string_view(CPPHTTPLIB_VERSION) == pgvigil::kPinnedHttplibVersion,
              "GuardedServer overrides cpp-httplib 0.11.4 internals (process_and_close_socket, "
              "process_request); check them against this version before changing the pin");

namespace pgvigil {

using front::ConnectionFront;

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
  set_keep_alive_timeout(
      std::chrono::duration_cast<std::chrono::seconds>(front::kKeepAlive).count());
  set_keep_alive_max_count(front::kKeepAliveMaxRequests);
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
