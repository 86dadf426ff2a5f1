#pragma once
// OtlpReceiver: a test OTLP/HTTP collector on loopback (port 0 -> a free port). Accepts
// POST /v1/traces, records every request (also the ones it then fails or hangs on) and answers
// as scripted: 200, 429 with Retry-After, 503, 400, or hang (no answer for `hang_for`).
// A script of replies is consumed first; then the default reply applies.
// Thread-safe (requests arrive on the server's threads); the destructor releases hung requests
// and stops the server.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace pgvigil::test {

enum class OtlpReply { kOk, kTooManyRequests, kUnavailable, kBadGateway, kBadRequest, kHang };

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::string body;
  std::multimap<std::string, std::string> headers;  // as httplib has them (case-insensitive)
  std::chrono::steady_clock::time_point at;

  std::string Header(const std::string& name) const;  // "" when absent; case-insensitive
};

class OtlpReceiver {
 public:
  OtlpReceiver();
  ~OtlpReceiver();
  OtlpReceiver(const OtlpReceiver&) = delete;
  OtlpReceiver& operator=(const OtlpReceiver&) = delete;

  int port() const { return port_; }
  std::string Endpoint() const;  // http://127.0.0.1:<port>/v1/traces

  void SetDefaultReply(OtlpReply reply);
  void Script(std::vector<OtlpReply> replies);   // used one per request before the default
  void SetRetryAfterSeconds(int seconds);        // for kTooManyRequests (default 1; <0 = omit)
  void SetHangFor(std::chrono::milliseconds d);  // for kHang (default 30s)
  // Answer to a 200: the body (default "{}").
  void SetOkBody(std::string body);

  std::vector<ReceivedRequest> Requests() const;
  size_t RequestCount() const;
  // Waits until at least `n` requests arrived; false on timeout.
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) const;

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ReceivedRequest> requests_;
  std::deque<OtlpReply> script_;
  OtlpReply default_reply_ = OtlpReply::kOk;
  int retry_after_seconds_ = 1;
  std::chrono::milliseconds hang_for_{30'000};
  std::string ok_body_ = "{}";
  bool closing_ = false;
};

}  // namespace pgvigil::test
