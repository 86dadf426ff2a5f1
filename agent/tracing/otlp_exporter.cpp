#include "tracing/otlp_exporter.hpp"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <stdexcept>

#include "util/host_lookup.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace pgvigil {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The URL with userinfo and query removed, for error messages.
std::string WithoutSecrets(std::string_view url) {
  std::string out(url);
  size_t q = out.find_first_of("?#");
  if (q != std::string::npos) out.resize(q);
  size_t scheme_end = out.find("://");
  size_t auth_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t auth_end = out.find('/', auth_start);
  size_t at = out.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
  if (at != std::string::npos && at >= auth_start &&
      (auth_end == std::string::npos || at < auth_end)) {
    out.erase(auth_start, at + 1 - auth_start);
  }
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string Rfc3339(SpanTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Collector answers are shown in /health: one line, bounded, printable.
std::string Snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  return out;
}

std::optional<milliseconds> ParseRetryAfter(const std::string& v) {
  // Only delta-seconds; an HTTP-date falls back to our own backoff.
  if (v.empty() || v.size() > 9) return std::nullopt;
  long secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (ec != std::errc() || p != v.data() + v.size() || secs < 0) return std::nullopt;
  return milliseconds(secs * 1000);
}

}  // namespace

std::optional<OtlpEndpoint> ParseOtlpEndpoint(std::string_view url, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<OtlpEndpoint> {
    if (error != nullptr) {
      *error = "tracing.otlp_endpoint: \"" + WithoutSecrets(url) + "\" " + why +
               "; use e.g. \"http://localhost:4318/v1/traces\"";
    }
    return std::nullopt;
  };
  OtlpEndpoint ep;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return fail("has no scheme");
  ep.scheme = Lower(url.substr(0, scheme_end));
  if (ep.scheme != "http" && ep.scheme != "https") {
    return fail("has scheme \"" + ep.scheme + "\", which is not http or https");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t frag = rest.find('#');
  if (frag != std::string_view::npos) rest = rest.substr(0, frag);
  size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view after = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    ep.username = PercentDecode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) ep.password = PercentDecode(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed IPv6 bracket");
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return fail("has junk after the IPv6 address");
      port_text = tail.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (ep.host.empty()) return fail("has no host");
  if (port_text.empty()) {
    ep.port = ep.scheme == "https" ? 443 : 80;
  } else {
    int port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 1 || port > 65535) {
      return fail("has an invalid port (1-65535)");
    }
    ep.port = port;
  }
  size_t q = after.find('?');
  ep.path = std::string(after.substr(0, q));
  if (q != std::string_view::npos) ep.query = std::string(after.substr(q + 1));
  if (ep.path.empty() || ep.path == "/") ep.path = "/v1/traces";
  ep.redacted = ep.scheme + "://" + HostForUrl(ep.host) + ":" + std::to_string(ep.port) + ep.path;
  return ep;
}

OtlpExporterOptions OtlpExporterOptions::FromSettings(const TracingSettings& s) {
  OtlpExporterOptions o;
  o.endpoint = s.otlp_endpoint;
  o.headers = s.headers;
  o.export_interval = s.export_interval;
  o.export_timeout = s.export_timeout;
  o.queue_spans = static_cast<size_t>(std::max(s.queue_spans, 1));
  return o;
}

namespace {

OtlpEndpoint ParseOrThrow(const std::string& url) {
  std::string error;
  auto ep = ParseOtlpEndpoint(url, &error);
  if (!ep) throw std::invalid_argument(error);
  return *ep;
}

OtlpExporterOptions Sanitize(OtlpExporterOptions o) {
  o.queue_spans = std::max<size_t>(o.queue_spans, 1);
  o.max_batch = std::max<size_t>(o.max_batch, 1);
  o.max_retries = std::max(o.max_retries, 0);
  o.export_interval = std::max(o.export_interval, milliseconds(10));
  o.export_timeout = std::max(o.export_timeout, milliseconds(10));
  o.backoff_initial = std::max(o.backoff_initial, milliseconds(1));
  o.backoff_max = std::max(o.backoff_max, o.backoff_initial);
  return o;
}

}  // namespace

OtlpExporter::OtlpExporter(OtlpExporterOptions options, TraceResource resource,
                           TracingMetrics* metrics)
    : options_(Sanitize(std::move(options))),
      endpoint_(ParseOrThrow(options_.endpoint)),
      resource_(std::move(resource)),
      metrics_(metrics) {
  status_.endpoint = endpoint_.redacted;
  status_.queue_capacity = options_.queue_spans;
  thread_ = std::jthread([this](std::stop_token stop) {
    try {
      Run(std::move(stop));
    } catch (...) {
      // No exception leaves a thread: the exporter stops, the agent goes on without it.
      LogError("span exporter stopped by an internal error");
      {
        std::lock_guard lock(mu_);
        done_ = true;
      }
      cv_.notify_all();
    }
  });
}

OtlpExporter::~OtlpExporter() { Shutdown(options_.export_timeout); }

void OtlpExporter::Consume(const std::vector<Span>& spans) {
  size_t full = 0, closed = 0;
  size_t length = 0;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : spans) {
      if (!accepting_) {
        ++closed;
      } else if (queue_.size() >= options_.queue_spans) {
        ++full;
      } else {
        queue_.push_back(s);
      }
    }
    length = queue_.size();
    wake = length >= options_.max_batch;
  }
  if (wake) cv_.notify_all();
  if (metrics_ != nullptr) metrics_->queue_length().Set(static_cast<double>(length));
  if (full > 0) Drop("queue_full", full);
  if (closed > 0) Drop("shutdown", closed);
}

bool OtlpExporter::Enqueue(Span span) {
  bool accepted = false;
  bool closed = false;
  size_t length = 0;
  {
    std::lock_guard lock(mu_);
    if (!accepting_) {
      closed = true;
    } else if (queue_.size() < options_.queue_spans) {
      queue_.push_back(std::move(span));
      accepted = true;
    }
    length = queue_.size();
  }
  if (accepted && length >= options_.max_batch) cv_.notify_all();
  if (metrics_ != nullptr) metrics_->queue_length().Set(static_cast<double>(length));
  if (!accepted) Drop(closed ? "shutdown" : "queue_full", 1);
  return accepted;
}

void OtlpExporter::Drop(std::string_view reason, size_t n) {
  if (n == 0) return;
  if (metrics_ != nullptr) metrics_->dropped(reason).Increment(static_cast<double>(n));
  std::lock_guard lock(mu_);
  status_.dropped += n;
}

void OtlpExporter::Shutdown(milliseconds deadline) {
  std::call_once(shutdown_once_, [&] {
    auto until = Clock::now() + std::max(deadline, milliseconds(0));
    {
      std::lock_guard lock(mu_);
      accepting_ = false;
      flush_deadline_ = until;
    }
    thread_.request_stop();  // wakes the thread's waits
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, until, [&] { return done_; });
    // Past the deadline: abort a DNS lookup or a request in flight. Repeat, since a new connect
    // may race us.
    abort_.request_stop();
    while (!done_) {
      if (in_flight_ != nullptr) in_flight_->stop();
      cv_.wait_for(lock, milliseconds(20), [&] { return done_; });
    }
    lock.unlock();
    thread_.join();
  });
}

milliseconds OtlpExporter::RequestTimeout() const {
  std::lock_guard lock(mu_);
  if (!flush_deadline_) return options_.export_timeout;
  auto left = std::chrono::duration_cast<milliseconds>(*flush_deadline_ - Clock::now());
  return std::clamp(left, milliseconds(1), options_.export_timeout);
}

bool OtlpExporter::SleepUntil(Clock::time_point until, const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  for (;;) {
    auto limit = flush_deadline_ ? std::min(until, *flush_deadline_) : until;
    if (Clock::now() >= limit) break;
    if (!stop.stop_requested()) {
      // Returns early on a stop request; then the loop re-reads the flush deadline.
      cv_.wait_until(lock, stop, limit, [] { return false; });
    } else {
      cv_.wait_until(lock, limit);
    }
  }
  return !(flush_deadline_ && until > *flush_deadline_);
}

void OtlpExporter::Run(std::stop_token stop) {
  auto next_flush = Clock::now() + options_.export_interval;
  for (;;) {
    std::vector<Span> batch;
    size_t length = 0;
    {
      std::unique_lock lock(mu_);
      if (!stop.stop_requested()) {
        cv_.wait_until(lock, stop, next_flush, [&] { return queue_.size() >= options_.max_batch; });
      }
      bool stopping = stop.stop_requested();
      auto now = Clock::now();
      if (stopping) {
        if (queue_.empty()) break;
        if (flush_deadline_ && now >= *flush_deadline_) {
          size_t n = queue_.size();
          queue_.clear();
          lock.unlock();
          Drop("shutdown", n);
          break;
        }
      } else if (queue_.size() < options_.max_batch && now < next_flush) {
        continue;  // spurious wake-up
      }
      if (now >= next_flush) next_flush = now + options_.export_interval;
      size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      length = queue_.size();
    }
    if (metrics_ != nullptr) metrics_->queue_length().Set(static_cast<double>(length));
    if (batch.empty()) continue;
    try {
      ExportBatch(batch, stop);
    } catch (const std::exception& e) {
      // Nothing may escape the thread; an encoding failure loses this batch only.
      Drop("export_failed", batch.size());
      std::lock_guard lock(mu_);
      status_.last_result = "other";
      status_.last_error = Snippet(e.what());
    }
  }
  if (metrics_ != nullptr) metrics_->queue_length().Set(0);
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

void OtlpExporter::ExportBatch(std::vector<Span>& batch, const std::stop_token& stop) {
  const std::string body = EncodeExportRequest(resource_, batch);
  const size_t n = batch.size();
  milliseconds backoff = options_.backoff_initial;
  for (int attempt = 0;; ++attempt) {
    bool past_deadline = false;
    {
      std::lock_guard lock(mu_);
      past_deadline = flush_deadline_ && Clock::now() >= *flush_deadline_;
    }
    if (past_deadline) {
      Drop("shutdown", n);
      return;
    }
    auto t0 = Clock::now();
    Attempt a = PostOnce(body, RequestTimeout());
    RecordAttempt(a, std::chrono::duration<double>(Clock::now() - t0).count());
    if (a.outcome == Outcome::kOk) {
      std::uint64_t accepted = n > a.rejected ? n - a.rejected : 0;
      if (metrics_ != nullptr) metrics_->exported().Increment(static_cast<double>(accepted));
      {
        std::lock_guard lock(mu_);
        status_.exported += accepted;
      }
      Drop("rejected", std::min<size_t>(n, a.rejected));
      return;
    }
    if (a.outcome == Outcome::kFatal) {
      Drop("rejected", n);
      return;
    }
    if (attempt >= options_.max_retries) {
      Drop("export_failed", n);
      return;
    }
    milliseconds wait;
    if (a.retry_after) {
      wait = std::min(*a.retry_after, options_.retry_after_cap);
    } else {
      // Full jitter over the upper half keeps retries spread without collapsing to zero.
      std::uint32_t r = 0;
      RandomBytes(reinterpret_cast<std::uint8_t*>(&r), sizeof r);
      auto half = backoff.count() / 2;
      wait = milliseconds(half + static_cast<long>(r % static_cast<std::uint32_t>(half + 1)));
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
    if (!SleepUntil(Clock::now() + wait, stop)) {
      Drop("shutdown", n);
      return;
    }
  }
}

OtlpExporter::Attempt OtlpExporter::PostOnce(const std::string& body, milliseconds timeout) {
  Attempt a;
  const auto t_lookup = Clock::now();
  const HostLookup found =
      LookupHosts({endpoint_.host}, t_lookup + timeout, abort_.get_token()).front();
  if (!found.ok()) {
    a.outcome = Outcome::kRetryable;
    a.reason = found.timed_out ? "timeout" : "connection";
    a.error = "host \"" + endpoint_.host + "\" does not resolve: " + found.error;
    return a;
  }
  timeout = std::max(milliseconds(1),
                     timeout - std::chrono::duration_cast<milliseconds>(Clock::now() - t_lookup));
  httplib::Client cli(endpoint_.scheme + "://" + HostForUrl(endpoint_.host) + ":" +
                      std::to_string(endpoint_.port));
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);
  if (!endpoint_.username.empty() || !endpoint_.password.empty()) {
    cli.set_basic_auth(endpoint_.username, endpoint_.password);
  }
  httplib::Headers headers;
  for (const auto& [k, v] : options_.headers) {
    std::string lk = Lower(k);
    if (lk == "content-type" || lk == "content-length" || lk == "host") continue;
    headers.emplace(k, v);
  }
  headers.emplace("User-Agent", std::string("pgvigil/") + kVersion);
  std::string target = endpoint_.path;
  if (!endpoint_.query.empty()) target += "?" + endpoint_.query;

  {
    std::lock_guard lock(mu_);
    in_flight_ = &cli;
  }
  auto t0 = Clock::now();
  // The addresses found under the deadline in turn, until one answers; TLS (SNI, certificate)
  // and the Host header keep the name.
  httplib::Result res{nullptr, httplib::Error::Unknown};
  TryAddresses(found.addresses, &address_, [&](const std::string& address) {
    cli.set_hostname_addr_map({{endpoint_.host, address}});
    res = cli.Post(target, headers, body, "application/json");
    return res || res.error() != httplib::Error::Connection || Clock::now() - t0 >= timeout;
  });
  if (!res) ++address_;  // e.g. a connect timeout: the next attempt starts at the next address
  auto elapsed = Clock::now() - t0;
  {
    std::lock_guard lock(mu_);
    in_flight_ = nullptr;
  }

  if (!res) {
    httplib::Error err = res.error();
    bool timed_out = err == httplib::Error::ConnectionTimeout ||
                     ((err == httplib::Error::Read || err == httplib::Error::Write) &&
                      elapsed >= timeout - milliseconds(50));
    switch (err) {
      case httplib::Error::SSLLoadingCerts:
      case httplib::Error::SSLServerVerification:
        a.outcome = Outcome::kFatal;
        a.reason = "tls";
        break;
      case httplib::Error::SSLConnection:
        a.outcome = Outcome::kRetryable;
        a.reason = "tls";
        break;
      case httplib::Error::Connection:
      case httplib::Error::ConnectionTimeout:
      case httplib::Error::Read:
      case httplib::Error::Write:
      case httplib::Error::Canceled:
        a.outcome = Outcome::kRetryable;
        a.reason = timed_out ? "timeout" : "connection";
        break;
      default:
        a.outcome = Outcome::kFatal;
        a.reason = "other";
        break;
    }
    a.error = timed_out ? "timed out after " + std::to_string(timeout.count()) + "ms"
                        : "request failed: " + httplib::to_string(err);
    return a;
  }
  int status = res->status;
  if (status >= 200 && status < 300) {
    a.outcome = Outcome::kOk;
    if (!res->body.empty()) {
      auto j = nlohmann::json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("partialSuccess") && j["partialSuccess"].is_object()) {
        const auto& rs = j["partialSuccess"].value("rejectedSpans", nlohmann::json());
        if (rs.is_number_unsigned()) a.rejected = rs.get<std::uint64_t>();
        if (rs.is_string()) {
          const std::string& t = rs.get_ref<const std::string&>();
          std::from_chars(t.data(), t.data() + t.size(), a.rejected);
        }
      }
    }
    return a;
  }
  a.error = "HTTP " + std::to_string(status);
  if (!res->body.empty()) a.error += ": " + Snippet(res->body);
  if (status == 429) {
    a.outcome = Outcome::kRetryable;
    a.reason = "throttled";
  } else if (status == 502 || status == 503 || status == 504) {
    a.outcome = Outcome::kRetryable;
    a.reason = "unavailable";
  } else if (status >= 400 && status < 500) {
    a.outcome = Outcome::kFatal;
    a.reason = "rejected";
  } else if (status >= 500) {
    a.outcome = Outcome::kFatal;
    a.reason = "server_error";
  } else {
    a.outcome = Outcome::kFatal;
    a.reason = "other";
  }
  if (a.outcome == Outcome::kRetryable && res->has_header("Retry-After")) {
    a.retry_after = ParseRetryAfter(res->get_header_value("Retry-After"));
  }
  return a;
}

void OtlpExporter::RecordAttempt(const Attempt& a, double seconds) {
  if (metrics_ != nullptr) {
    metrics_->export_duration().Observe(seconds);
    if (a.outcome != Outcome::kOk) metrics_->export_errors(a.reason).Increment();
  }
  std::lock_guard lock(mu_);
  status_.last_export_at = std::chrono::system_clock::now();
  if (a.outcome == Outcome::kOk) {
    status_.last_result = "ok";
    status_.last_error.clear();
    status_.last_success_at = status_.last_export_at;
    status_.consecutive_failures = 0;
  } else {
    status_.last_result = a.reason;
    status_.last_error = a.error;
    ++status_.failed_attempts;
    ++status_.consecutive_failures;
  }
}

ExporterStatus OtlpExporter::Status() const {
  std::lock_guard lock(mu_);
  ExporterStatus s = status_;
  s.queue_length = queue_.size();
  return s;
}

std::string OtlpExporter::StatusJson() const {
  return StatusSection().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json OtlpExporter::StatusSection() const {
  ExporterStatus s = Status();
  nlohmann::json j = {
      {"enabled", true},
      {"endpoint", s.endpoint},
      {"queue_length", s.queue_length},
      {"queue_capacity", s.queue_capacity},
      {"exported_spans", s.exported},
      {"dropped_spans", s.dropped},
      {"failed_attempts", s.failed_attempts},
      {"consecutive_failures", s.consecutive_failures},
      {"last_result",
       s.last_result.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.last_result)},
  };
  if (!s.last_error.empty()) j["last_error"] = s.last_error;
  if (s.last_export_at) j["last_export_at"] = Rfc3339(*s.last_export_at);
  if (s.last_success_at) j["last_success_at"] = Rfc3339(*s.last_success_at);
  return j;
}

std::string OtlpExporter::DisabledStatusJson() { return R"({"enabled":false})"; }

}  // namespace pgvigil
