#include "neon/neon_api.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>

#include "util/host_lookup.hpp"

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

bool ParseInt(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

struct ParsedApiUrl {
  std::string scheme_host_port;  // for httplib::Client
  std::string host;              // without port or IPv6 brackets, as httplib keeps it
  std::string base_path;         // without trailing slash
};

std::optional<ParsedApiUrl> ParseApiUrl(const std::string& url, std::string* error) {
  std::string scheme;
  if (url.starts_with("https://")) {
    scheme = "https";
  } else if (url.starts_with("http://")) {
    scheme = "http";
  } else {
    *error = "neon.api_url \"" + OneLine(url) + "\" must start with https:// (or http://)";
    return std::nullopt;
  }
  std::string rest = url.substr(scheme.size() + 3);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (authority.empty() || authority.find('@') != std::string::npos ||
      authority.find_first_of("?# ") != std::string::npos) {
    *error = "neon.api_url \"" + OneLine(url) + "\" has no usable host; use e.g. " +
             "https://console.neon.tech/api/v2";
    return std::nullopt;
  }
  std::string host = authority;
  if (host.starts_with('[')) {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return ParsedApiUrl{scheme + "://" + authority, host, path};
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

std::string ApiResult::Outcome() const {
  if (ok()) return "ok";
  return std::string(ApiErrorKindName(error ? error->kind : ApiErrorKind::kNetwork));
}

std::string FormatRfc3339(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  int milli = static_cast<int>(ms % 1000);
  if (milli < 0) {
    milli += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  return buf;
}

std::optional<Millis> ParseRetryAfter(std::string_view value, SystemTime now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int secs = 0;
  if (ParseInt(value, secs)) {
    if (secs < 0) return std::nullopt;
    return Millis(static_cast<long long>(secs) * 1000);
  }
  std::tm tm{};
  std::string copy(value);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<Millis>(at - now);
  return delta.count() < 0 ? Millis(0) : delta;
}

ApiResult InterpretEndpointResponse(int status, std::string_view body,
                                    std::optional<std::string> retry_after, std::string_view key,
                                    SystemTime now) {
  ApiResult r;
  // Neon's error bodies carry {"message": "..."}; show it (scrubbed, one line) for context.
  auto body_message = [&]() -> std::string {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) {
      return ": " + OneLine(Scrub(j["message"].get<std::string>(), key));
    }
    return "";
  };
  if (status == 401 || status == 403) {
    r.error = MakeError(ApiErrorKind::kUnauthorized, status,
                        "Neon API answered " + std::to_string(status) + body_message() +
                            "; check NEON_API_KEY (neon.api_key_env) and that the key can read "
                            "this project");
    return r;
  }
  if (status == 404) {
    r.error = MakeError(
        ApiErrorKind::kNotFound, status,
        "Neon API answered 404" + body_message() + "; check neon.project_id and neon.endpoint_id");
    return r;
  }
  if (status == 429 || status == 503) {
    std::optional<Millis> wait;
    if (retry_after) wait = ParseRetryAfter(*retry_after, now);
    if (status == 429) {
      r.error = MakeError(ApiErrorKind::kRateLimited, status,
                          "Neon API rate limit reached (429); backing off");
    } else {
      r.error = MakeError(ApiErrorKind::kServer, status,
                          "Neon API unavailable (503)" + body_message() + "; retrying later");
    }
    r.error->retry_after = wait;
    return r;
  }
  if (status != 200) {
    r.error = MakeError(
        ApiErrorKind::kServer, status,
        "Neon API answered " + std::to_string(status) + body_message() + "; retrying later");
    return r;
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("endpoint") || !j["endpoint"].is_object()) {
    r.error = MakeError(ApiErrorKind::kBadResponse, status,
                        "Neon API response has no \"endpoint\" object; is neon.api_url the API "
                        "base (e.g. https://console.neon.tech/api/v2)?");
    return r;
  }
  const auto& ep = j["endpoint"];
  if (!ep.contains("current_state") || !ep["current_state"].is_string()) {
    r.error = MakeError(ApiErrorKind::kBadResponse, status,
                        "Neon API response has no endpoint.current_state");
    return r;
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
  r.state = std::move(cs);
  return r;
}

struct NeonApi::ClientHolder {
  explicit ClientHolder(const std::string& scheme_host_port) : client(scheme_host_port) {}
  httplib::Client client;
};

NeonApi::NeonApi(NeonApiOptions options) : options_(std::move(options)) {
  std::string error;
  auto parsed = ParseApiUrl(options_.api_url, &error);
  if (!parsed) {
    config_error_ = MakeError(ApiErrorKind::kConfig, 0, error);
    return;
  }
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
  path_ =
      parsed->base_path + "/projects/" + options_.project_id + "/endpoints/" + options_.endpoint_id;
  host_ = parsed->host;
  client_ = std::make_unique<ClientHolder>(parsed->scheme_host_port);
  auto& c = client_->client;
  auto split = [](Millis d, auto&& set) {
    set(static_cast<time_t>(d.count() / 1000), static_cast<time_t>((d.count() % 1000) * 1000));
  };
  split(options_.connect_timeout, [&c](time_t s, time_t us) { c.set_connection_timeout(s, us); });
  split(options_.read_timeout, [&c](time_t s, time_t us) { c.set_read_timeout(s, us); });
  split(options_.read_timeout, [&c](time_t s, time_t us) { c.set_write_timeout(s, us); });
  c.set_keep_alive(false);
  c.set_follow_location(false);
}

NeonApi::~NeonApi() = default;

ApiResult NeonApi::GetEndpoint() {
  ApiResult r;
  if (config_error_) {
    r.error = config_error_;
    return r;
  }
  httplib::Headers headers = {{"Authorization", "Bearer " + options_.api_key},
                              {"Accept", "application/json"},
                              {"User-Agent", "pgvigil"}};
  // The name is looked up under the connect deadline (a silent DNS server would otherwise hold
  // the scheduler), then the client connects to its addresses in turn until one answers; TLS
  // (SNI, certificate) and the Host header keep the name.
  const HostLookup found =
      LookupHosts({host_}, std::chrono::steady_clock::now() + options_.connect_timeout).front();
  if (!found.ok()) {
    r.error = MakeError(ApiErrorKind::kNetwork, 0,
                        "Neon API host \"" + OneLine(host_) +
                            "\" does not resolve: " + found.error + "; check neon.api_url and DNS");
    return r;
  }
  httplib::Result res{nullptr, httplib::Error::Unknown};
  TryAddresses(found.addresses, &address_, [&](const std::string& address) {
    client_->client.set_hostname_addr_map({{host_, address}});
    res = client_->client.Get(path_.c_str(), headers);
    return res || res.error() != httplib::Error::Connection;
  });
  if (!res) ++address_;  // e.g. a connect timeout: the next call starts at the next address
  if (!res) {
    r.error = MakeError(ApiErrorKind::kNetwork, 0,
                        "Neon API request failed: " + httplib::to_string(res.error()) +
                            "; check neon.api_url and network access");
    return r;
  }
  std::optional<std::string> retry_after;
  if (res->has_header("Retry-After")) retry_after = res->get_header_value("Retry-After");
  return InterpretEndpointResponse(res->status, res->body, retry_after, options_.api_key,
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
  if (result.ok()) {
    consecutive_failures_ = 0;
  } else {
    ++consecutive_failures_;
    const ApiError& e = *result.error;
    if (e.kind == ApiErrorKind::kRateLimited) {
      // Neon asked us to slow down: interval, 2x, 4x, ... capped at max_backoff.
      int shift = std::min(consecutive_failures_ - 1, 16);
      Millis backoff(options_.interval.count() * (1LL << shift));
      delay = std::max(std::min(backoff, options_.max_backoff), options_.interval);
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
