#pragma once
// NeonApi: a small client for Neon's control-plane API, used while pgvigil lets a compute sleep:
//   GET {api_url}/projects/{project_id}/endpoints/{endpoint_id}
// with "Authorization: Bearer <key>". Every call has connect/read deadlines and returns a value
// (ComputeState or ApiError); nothing throws. The key is never put in an error, log or status.
// NeonApi is not thread-safe (owned by the scheduler). PollPacer is a pure helper (not
// thread-safe, injected times) that spaces the polls within Neon's rate limit.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config/duration.hpp"
#include "config/endpoints.hpp"
#include "util/result.hpp"
#include "util/retry_after.hpp"  // ParseRetryAfter
#include "util/time.hpp"
#include "util/time_format.hpp"  // ParseRfc3339

namespace pgvigil {

class HttpClient;

enum class ComputeStateKind { kInit, kActive, kIdle, kUnknown };
// "init", "active", "idle", "unknown".
std::string_view ComputeStateName(ComputeStateKind k);
ComputeStateKind ParseComputeState(std::string_view s);  // unknown for anything else

struct ComputeState {
  ComputeStateKind state = ComputeStateKind::kUnknown;
  std::string raw_state;                             // as sent, for /health when unknown
  std::optional<long long> suspend_timeout_seconds;  // Neon: 0 = default (5 min), -1 = never
  std::optional<SystemTime> last_active;
};

enum class ApiErrorKind {
  kUnauthorized,  // 401/403: the key is wrong or lacks access
  kNotFound,      // 404: project or endpoint id wrong
  kRateLimited,   // 429
  kServer,        // 5xx or another unexpected status
  kNetwork,       // connect/read failure or timeout
  kBadResponse,   // 200 but the body is not what we expect
  kConfig,        // api_url unusable, key/project/endpoint missing
};
// "unauthorized", "not_found", "rate_limited", "server", "network", "bad_response", "config".
std::string_view ApiErrorKindName(ApiErrorKind k);

struct ApiError {
  ApiErrorKind kind = ApiErrorKind::kNetwork;
  int http_status = 0;                // 0 when no response
  std::optional<Millis> retry_after;  // from Retry-After on 429/503
  std::string message;                // one line with the fix; never contains the key
  // Transient: worth retrying at the normal pace (rate_limited, server, network, bad_response).
  bool Transient() const;
};

using ApiResult = Result<ComputeState, ApiError>;
// "ok" or ApiErrorKindName: the outcome label for pgvigil_neon_api_requests_total.
std::string ApiOutcome(const ApiResult& result);

struct NeonApiOptions {
  // Parsed by config (config/endpoints.hpp: ParseNeonApiUrl): no user, query or trailing slash.
  HttpEndpoint api_url = DefaultNeonApiUrl();
  std::string api_key;
  std::string project_id;
  std::string endpoint_id;
  Millis connect_timeout{3000};
  Millis read_timeout{5000};
};

// Turns an HTTP answer into a result (the part of GetEndpoint that needs no network).
// `key` is scrubbed from any text taken from the body.
ApiResult InterpretEndpointResponse(int status, std::string_view body,
                                    std::optional<std::string> retry_after, std::string_view key,
                                    SystemTime now);

class NeonApi {
 public:
  explicit NeonApi(NeonApiOptions options);
  ~NeonApi();
  NeonApi(const NeonApi&) = delete;
  NeonApi& operator=(const NeonApi&) = delete;

  // One GET; blocks at most connect_timeout for the DNS lookup, then connect_timeout +
  // read_timeout (addresses that refuse at once are skipped).
  ApiResult GetEndpoint();
  // The request path (for logs: contains ids, no key).
  std::string path() const { return path_; }

 private:
  NeonApiOptions options_;
  std::string path_;
  std::optional<ApiError> config_error_;
  std::unique_ptr<HttpClient> client_;  // null when config_error_ is set
};

// Spaces API polls: the configured interval while things work and on 5xx/network errors (a
// bounded pace: an outage is over for us within one interval of its end; Retry-After honoured up
// to max_backoff); exponential backoff (doubling, capped at max_backoff) on 429, never earlier
// than Retry-After; a slow pace
// (misconfigured_interval) after 401/403/404; and a sliding one-minute window that never lets
// more than max_per_minute requests through. Neon allows 700 req/min per account (shared by
// everything using the key), so one agent defaults to a small share.
struct PollPacerOptions {
  Millis interval{30'000};
  Millis min_interval{1000};  // floor for any configured interval
  Millis max_backoff{300'000};
  Millis misconfigured_interval{300'000};
  int max_per_minute = 60;
};

class PollPacer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PollPacer(PollPacerOptions options);
  // Records a request made at `now` with `result`; returns when the next one may be made.
  Clock::time_point OnResult(Clock::time_point now, const ApiResult& result);
  // The earliest time a request is allowed at all (window cap), for an extra poll (POST /wake).
  Clock::time_point EarliestAllowed(Clock::time_point now) const;
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  PollPacerOptions options_;
  int consecutive_failures_ = 0;
  std::deque<Clock::time_point> window_;  // request times within the last minute
};

}  // namespace pgvigil
