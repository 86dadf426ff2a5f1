#include "support/otlp_receiver.hpp"

#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace pgvigil::test {

namespace {

// With PGVIGIL_OTLP_DUMP_DIR set, every body received is also written there, one file per
// request, for tests/tracing/test_otlp_proto.sh to decode with the official OTLP definitions.
void DumpBody(const std::string& body) {
  const char* dir = std::getenv("PGVIGIL_OTLP_DUMP_DIR");
  if (dir == nullptr || *dir == '\0') return;
  static std::atomic<unsigned> counter{0};
  const std::string path = std::string(dir) + "/export-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + ".json";
  std::ofstream(path, std::ios::binary) << body;
}

}  // namespace

std::string ReceivedRequest::Header(const std::string& name) const {
  // httplib::Headers compares keys case-insensitively, but ours is a plain multimap copy.
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  std::string want = lower(name);
  for (const auto& [k, v] : headers) {
    if (lower(k) == want) return v;
  }
  return "";
}

OtlpReceiver::OtlpReceiver() : server_(std::make_unique<httplib::Server>()) {
  server_->Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
    OtlpReply reply;
    std::unique_lock lock(mu_);
    ReceivedRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    DumpBody(req.body);
    r.headers.insert(req.headers.begin(), req.headers.end());
    r.at = std::chrono::steady_clock::now();
    requests_.push_back(std::move(r));
    cv_.notify_all();
    if (!script_.empty()) {
      reply = script_.front();
      script_.pop_front();
    } else {
      reply = default_reply_;
    }
    switch (reply) {
      case OtlpReply::kOk:
        res.status = 200;
        res.set_content(ok_body_, "application/json");
        break;
      case OtlpReply::kTooManyRequests:
        res.status = 429;
        if (retry_after_seconds_ >= 0) {
          res.set_header("Retry-After", std::to_string(retry_after_seconds_));
        }
        res.set_content("{\"code\":8,\"message\":\"slow down\"}", "application/json");
        break;
      case OtlpReply::kUnavailable:
        res.status = 503;
        res.set_content("unavailable", "text/plain");
        break;
      case OtlpReply::kBadGateway:
        res.status = 502;
        res.set_content("bad gateway", "text/plain");
        break;
      case OtlpReply::kBadRequest:
        res.status = 400;
        res.set_content("{\"code\":3,\"message\":\"bad payload\"}", "application/json");
        break;
      case OtlpReply::kHang:
        // Longer than the client's timeout; released early when the receiver closes.
        cv_.wait_for(lock, hang_for_, [&] { return closing_; });
        res.status = 200;
        res.set_content(ok_body_, "application/json");
        break;
    }
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("OtlpReceiver: cannot bind a loopback port");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the accept loop runs; wait for it so the destructor cannot hang.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

OtlpReceiver::~OtlpReceiver() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string OtlpReceiver::Endpoint() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
}

void OtlpReceiver::SetDefaultReply(OtlpReply reply) {
  std::lock_guard lock(mu_);
  default_reply_ = reply;
}

void OtlpReceiver::Script(std::vector<OtlpReply> replies) {
  std::lock_guard lock(mu_);
  script_.assign(replies.begin(), replies.end());
}

void OtlpReceiver::SetRetryAfterSeconds(int seconds) {
  std::lock_guard lock(mu_);
  retry_after_seconds_ = seconds;
}

void OtlpReceiver::SetHangFor(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  hang_for_ = d;
}

void OtlpReceiver::SetOkBody(std::string body) {
  std::lock_guard lock(mu_);
  ok_body_ = std::move(body);
}

std::vector<ReceivedRequest> OtlpReceiver::Requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

size_t OtlpReceiver::RequestCount() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

bool OtlpReceiver::WaitForRequests(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

}  // namespace pgvigil::test
