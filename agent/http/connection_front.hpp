#pragma once
// ConnectionFront: the event loop and the workers behind GuardedServer (see guarded_server.hpp
// for what they do and why). The loop thread's half is connection_loop.cpp; starting, stopping,
// adopting sockets and the workers are connection_front.cpp. Internal to http/.
// Thread-safety: Start, Stop and Adopt from any thread; the rest runs on the loop or a worker.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/guarded_server.hpp"

namespace pgvigil::front {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline constexpr auto kRequestDeadline = 2000ms;  // a whole request, from its first byte
inline constexpr auto kKeepAlive = 1000ms;        // idle between requests
// Past half the connection cap, keep-alive gets this long and every response closes.
inline constexpr auto kKeepAliveUnderPressure = 250ms;
inline constexpr auto kWriteDeadline = 5s;      // a response must be taken by the client within
inline constexpr auto kLingerDeadline = 500ms;  // reading what a client sent after its last request
inline constexpr auto kShutdownGrace = 1s;      // in-flight responses on Stop
inline constexpr auto kSweepEvery = 50ms;       // deadline resolution
inline constexpr size_t kKeepAliveMaxRequests = 100;
inline constexpr size_t kMaxConnectionsCeiling = 4096;
inline constexpr size_t kReservedDescriptors = 256;  // libpq, DNS, /proc reads, logs
inline constexpr size_t kMinConnections = 64;
// Bytes held for all clients together (requests being read, responses being written); past it
// the oldest waiting or reading connections are closed first.
inline constexpr size_t kMaxBufferedBytes = 32u << 20;
inline constexpr size_t kReadChunk = 16 * 1024;

size_t MaxConnections();  // from RLIMIT_NOFILE

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

// A whole HTTP/1.1 response with a plain-text body that closes the connection.
std::string Canned(int status, std::string_view reason, std::string_view body);

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
  bool Start();

  // Any thread (cpp-httplib's accept thread): the loop takes the socket over.
  void Adopt(int fd);
  // Stops reading, lets running requests finish and their responses go out (bounded by
  // kShutdownGrace), joins every thread and closes every connection. Idempotent.
  void Stop();

 private:
  void Wake();

  // The loop thread.
  void Loop();
  bool StopRequested();
  void TakeAdopted();
  void Add(int fd);
  void OnEvent(Conn& c, uint32_t events);
  void OnReadable(Conn& c);
  // Decides what the buffered bytes of a waiting/reading connection allow.
  void Advance(Conn& c);
  void TakeCompleted();
  void StartWriting(Conn& c);
  void Write(Conn& c);
  // Closes after the last response; when the client sent more than was read, shuts the write
  // side first and reads the rest, so the close does not reset the response away (RST).
  void Finish(Conn& c);
  void Drain(Conn& c);
  void EnterWaiting(Conn& c, Clock::time_point deadline);
  void Unlist(Conn& c);
  // Closes the oldest connection that is only waiting or reading (from `ip` when given).
  bool Evict(const std::string* ip);
  void EnforceByteBudget();
  void Sweep(Clock::time_point now);
  void SetInterest(Conn& c, uint32_t events);
  void Close(Conn& c);
  void UpdatePressure() { pressure_ = conns_.size() > max_conns_ / 2; }

  // Workers.
  void Work();
  void Run(Conn& c);

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

}  // namespace pgvigil::front
