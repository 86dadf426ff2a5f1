#pragma once
// HttpClient: the one outbound HTTP client (the Neon API, the OTLP collector). Each Send looks
// the host up under a deadline (util/host_lookup: a silent DNS server cannot hold the caller),
// then tries the addresses in turn from the one that answered last until one answers; TLS (SNI,
// certificate) and the Host header keep the name. Failures come back as values, never thrown.
// One thread sends at a time; Abort() may be called from any thread (shutdown).
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "net/http_endpoint.hpp"
#include "util/result.hpp"
#include "util/time.hpp"

namespace httplib {
class Client;
}

namespace pgvigil {

struct HttpTimeouts {
  Millis dns{5000};      // the lookup
  Millis connect{5000};  // each connect
  Millis io{5000};       // each read and write
};

struct HttpRequest {
  std::string method = "GET";  // "GET" | "POST"
  std::string target;          // path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type;  // POST only
};

struct HttpReply {
  int status = 0;
  std::string body;
  std::optional<std::string> retry_after;  // the Retry-After header, when sent
};

enum class HttpErrorKind {
  kDns,         // the name does not resolve (or not by the deadline: timed_out)
  kConnection,  // refused, reset, read/write failed
  kTimeout,     // connect or read deadline
  kTls,         // the TLS handshake failed (may be transient)
  kTlsVerify,   // certificate not trusted or not loadable (configuration)
  kCanceled,    // Abort()
  kOther,
};

struct HttpError {
  HttpErrorKind kind = HttpErrorKind::kOther;
  bool timed_out = false;
  std::string message;  // one line, e.g. "Could not establish connection"; no secrets
};

class HttpClient {
 public:
  explicit HttpClient(HttpEndpoint endpoint);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Blocks at most timeouts.dns for the lookup, then about connect + io per address tried
  // (addresses that refuse at once are skipped; none is tried once `budget` has passed).
  Result<HttpReply, HttpError> Send(const HttpRequest& request, const HttpTimeouts& timeouts,
                                    std::optional<Millis> budget = std::nullopt);
  // Ends a lookup or request in flight now and every later Send at once (kCanceled).
  void Abort();

  const HttpEndpoint& endpoint() const { return endpoint_; }

 private:
  const HttpEndpoint endpoint_;
  std::unique_ptr<httplib::Client> client_;
  std::stop_source abort_;
  std::mutex mu_;  // guards in_flight_ against Abort()
  bool in_flight_ = false;
  std::size_t address_ = 0;  // which address answered last
};

}  // namespace pgvigil
