#include "neon/neon_api.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "net/http_client.hpp"
#include "net/http_endpoint.hpp"
#include "util/backoff.hpp"

namespace pgvigil {
namespace {

std::string Scrub(std::string text, std::string_view key) {
  if (key.empty()) return text;
  for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos)) {
    text.replace(pos, key.size(), "***");
  }
  return text;
}

std::string OneLine(std::string text, std::size_t max = 200) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

ApiError MakeError(ApiErrorKind kind, int status, std::string message) {
  ApiError e;
  e.kind = kind;
  e.http_status = status;
  e.message = std::move(message);
  return e;
}

}  // namespace

std::string_view ComputeStateName(ComputeStateKind k) {
  switch (k) {
    case ComputeStateKind::kInit:
      return "init";
    case ComputeStateKind::kActive:
      return "active";
    case ComputeStateKind::kIdle:
      return "idle";
    case ComputeStateKind::kUnknown:
      break;
  }
  return "unknown";
}

ComputeStateKind ParseComputeState(std::string_view s) {
  if (s == "init") return ComputeStateKind::kInit;
  if (s == "active") return ComputeStateKind::kActive;
  if (s == "idle") return ComputeStateKind::kIdle;
  return ComputeStateKind::kUnknown;
}

std::string_view ApiErrorKindName(ApiErrorKind k) {
  switch (k) {
    case ApiErrorKind::kUnauthorized:
      return "unauthorized";
    case ApiErrorKind::kNotFound:
      return "not_found";
    case ApiErrorKind::kRateLimited:
      return "rate_limited";
    case ApiErrorKind::kServer:
      return "server";
    case ApiErrorKind::kNetwork:
      return "network";
    case ApiErrorKind::kBadResponse:
      return "bad_response";
    case ApiErrorKind::kConfig:
      return "config";
  }
  return "unknown";
}

bool ApiError::Transient() const {
  return kind == ApiErrorKind::kRateLimited || kind == ApiErrorKind::kServer ||
         kind == ApiErrorKind::kNetwork || kind == ApiErrorKind::kBadResponse;
}

std::string ApiOutcome(const ApiResult& result) {
  return result ? "ok" : std::string(ApiErrorKindName(result.error().kind));
}

ApiResult InterpretEndpointResponse(int status, std::string_view body,
                                    std::optional<std::string> retry_after, std::string_view key,
                                    SystemTime now) {
  // Neon's error bodies carry {"message": "..."}; show it (scrubbed, one line) for context.
  auto body_message = [&]() -> std::string {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) {
      return ": " + OneLine(Scrub(j["message"].get<std::string>(), key));
    }
    return "";
  };
  if (status == 401 || status == 403) {
    return tl::make_unexpected(
        MakeError(ApiErrorKind::kUnauthorized, status,
                  "Neon API answered " + std::to_string(status) + body_message() +
                      "; check NEON_API_KEY (neon.api_key_env) and that the key can read "
                      "this project"));
  }
  if (status == 404) {
    return tl::make_unexpected(MakeError(
        ApiErrorKind::kNotFound, status,
        "Neon API answered 404" + body_message() + "; check neon.project_id and neon.endpoint_id"));
  }
  if (status == 429 || status == 503) {
    std::optional<Millis> wait;
    if (retry_after) wait = ParseRetryAfter(*retry_after, now);
    ApiError e =
        status == 429
            ? MakeError(ApiErrorKind::kRateLimited, status,
                        "Neon API rate limit reached (429); backing off")
            : MakeError(ApiErrorKind::kServer, status,
                        "Neon API unavailable (503)" + body_message() + "; retrying later");
    e.retry_after = wait;
    return tl::make_unexpected(std::move(e));
  }
  if (status != 200) {
    return tl::make_unexpected(MakeError(
        ApiErrorKind::kServer, status,
        "Neon API answered " + std::to_string(status) + body_message() + "; retrying later"));
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("endpoint") || !j["endpoint"].is_object()) {
    return tl::make_unexpected(
        MakeError(ApiErrorKind::kBadResponse, status,
                  "Neon API response has no \"endpoint\" object; is neon.api_url the API "
                  "base (e.g. https://console.neon.tech/api/v2)?"));
  }
  const auto& ep = j["endpoint"];
  if (!ep.contains("current_state") || !ep["current_state"].is_string()) {
    return tl::make_unexpected(MakeError(ApiErrorKind::kBadResponse, status,
                                         "Neon API response has no endpoint.current_state"));
  }
  ComputeState cs;
  cs.raw_state = OneLine(ep["current_state"].get<std::string>(), 32);
  cs.state = ParseComputeState(cs.raw_state);
  if (ep.contains("suspend_timeout_seconds") && ep["suspend_timeout_seconds"].is_number_integer()) {
    cs.suspend_timeout_seconds = ep["suspend_timeout_seconds"].get<long long>();
  }
  if (ep.contains("last_active") && ep["last_active"].is_string()) {
    cs.last_active = ParseRfc3339(ep["last_active"].get<std::string>());
  }
  return cs;
}

NeonApi::NeonApi(NeonApiOptions options) : options_(std::move(options)) {
  if (options_.api_key.empty()) {
    config_error_ =
        MakeError(ApiErrorKind::kConfig, 0, "no Neon API key; set NEON_API_KEY (neon.api_key_env)");
    return;
  }
  if (options_.project_id.empty() || options_.endpoint_id.empty()) {
    config_error_ = MakeError(ApiErrorKind::kConfig, 0,
                              "neon.project_id and an endpoint id are needed to watch the compute");
    return;
  }
  path_ = options_.api_url.path + "/projects/" + options_.project_id + "/endpoints/" +
          options_.endpoint_id;
  client_ = std::make_unique<HttpClient>(options_.api_url);
}

NeonApi::~NeonApi() = default;

ApiResult NeonApi::GetEndpoint() {
  if (config_error_) return tl::make_unexpected(*config_error_);
  HttpRequest request;
  request.target = path_;
  request.headers = {{"Authorization", "Bearer " + options_.api_key},
                     {"Accept", "application/json"},
                     {"User-Agent", "pgvigil"}};
  // The name is looked up under the connect deadline (a silent DNS server would otherwise hold
  // the scheduler), then each address in turn (net/http_client.hpp).
  const HttpTimeouts timeouts{options_.connect_timeout, options_.connect_timeout,
                              options_.read_timeout};
  auto reply = client_->Send(request, timeouts);
  if (!reply && reply.error().kind == HttpErrorKind::kDns) {
    return tl::make_unexpected(MakeError(ApiErrorKind::kNetwork, 0,
                                         "Neon API host \"" + OneLine(client_->endpoint().host) +
                                             "\" does not resolve: " + reply.error().message +
                                             "; check neon.api_url and DNS"));
  }
  if (!reply) {
    return tl::make_unexpected(MakeError(ApiErrorKind::kNetwork, 0,
                                         "Neon API request failed: " + reply.error().message +
                                             "; check neon.api_url and network access"));
  }
  return InterpretEndpointResponse(reply->status, reply->body, reply->retry_after, options_.api_key,
                                   std::chrono::system_clock::now());
}

PollPacer::PollPacer(PollPacerOptions options) : options_(options) {
  options_.interval = std::max(options_.interval, options_.min_interval);
  options_.max_per_minute = std::max(options_.max_per_minute, 1);
}

PollPacer::Clock::time_point PollPacer::EarliestAllowed(Clock::time_point now) const {
  if (static_cast<int>(window_.size()) < options_.max_per_minute) return now;
  // The window is full: the oldest request must age out first.
  auto at = window_[window_.size() - options_.max_per_minute] + std::chrono::minutes(1);
  return std::max(now, at);
}

PollPacer::Clock::time_point PollPacer::OnResult(Clock::time_point now, const ApiResult& result) {
  window_.push_back(now);
  while (!window_.empty() && window_.front() <= now - std::chrono::minutes(1)) window_.pop_front();
  while (static_cast<int>(window_.size()) > options_.max_per_minute) window_.pop_front();

  Millis delay = options_.interval;
  if (result) {
    consecutive_failures_ = 0;
  } else {
    ++consecutive_failures_;
    const ApiError& e = result.error();
    if (e.kind == ApiErrorKind::kRateLimited) {
      // Neon asked us to slow down: interval, 2x, 4x, ... capped at max_backoff.
      delay = std::max(
          BackoffCeiling(options_.interval, options_.max_backoff, consecutive_failures_ - 1),
          options_.interval);
      if (e.retry_after) delay = std::max(delay, *e.retry_after);
    } else if (e.Transient()) {
      // 5xx, network, bad body: keep the normal pace, so an outage ends for us within about one
      // interval of its end (a growing backoff would leave a sleeping compute's state unknown
      // for minutes). A Retry-After is honoured up to max_backoff.
      delay = options_.interval;
      if (e.retry_after) delay = std::max(delay, std::min(*e.retry_after, options_.max_backoff));
    } else {
      delay = std::max(options_.interval, options_.misconfigured_interval);
    }
  }
  return std::max(now + delay, EarliestAllowed(now + delay));
}

}  // namespace pgvigil
