#include "tracing/otlp_exporter.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "util/backoff.hpp"
#include "util/log.hpp"
#include "util/retry_after.hpp"
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

// OTLP partial success: {"partialSuccess":{"rejectedSpans":N}} (N a number or a string).
std::uint64_t RejectedSpans(const std::string& body) {
  std::uint64_t rejected = 0;
  if (body.empty()) return 0;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("partialSuccess") && j["partialSuccess"].is_object()) {
    const auto& rs = j["partialSuccess"].value("rejectedSpans", nlohmann::json());
    if (rs.is_number_unsigned()) rejected = rs.get<std::uint64_t>();
    if (rs.is_string()) {
      const std::string& t = rs.get_ref<const std::string&>();
      std::from_chars(t.data(), t.data() + t.size(), rejected);
    }
  }
  return rejected;
}

// Collector answers are shown in /health: one line, bounded, printable.
std::string Snippet(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 200)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : ' ');
  }
  return out;
}

}  // namespace

OtlpExporterOptions OtlpExporterOptions::FromSettings(const TracingSettings& s) {
  OtlpExporterOptions o;
  if (s.otlp_endpoint) o.endpoint = *s.otlp_endpoint;
  o.headers = s.headers;
  o.export_interval = s.export_interval;
  o.export_timeout = s.export_timeout;
  o.queue_spans = static_cast<size_t>(std::max(s.queue_spans, 1));
  return o;
}

namespace {

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
      client_(options_.endpoint),
      resource_(std::move(resource)),
      metrics_(metrics) {
  status_.endpoint = client_.endpoint().Redacted();
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
    while (!done_) {
      client_.Abort();
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
  // Jitter over the upper half keeps retries spread without collapsing to zero.
  Backoff backoff(options_.backoff_initial, options_.backoff_max, Jitter::kHalf);
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
    const milliseconds wait =
        a.retry_after ? std::min(*a.retry_after, options_.retry_after_cap) : backoff.Next();
    if (!SleepUntil(Clock::now() + wait, stop)) {
      Drop("shutdown", n);
      return;
    }
  }
}

OtlpExporter::Attempt OtlpExporter::PostOnce(const std::string& body, milliseconds timeout) {
  Attempt a;
  HttpRequest request;
  request.method = "POST";
  const HttpEndpoint& ep = client_.endpoint();
  request.target = ep.path + (ep.query.empty() ? "" : "?" + ep.query);
  for (const auto& [k, v] : options_.headers) {
    std::string lk = Lower(k);
    if (lk == "content-type" || lk == "content-length" || lk == "host") continue;
    request.headers.emplace_back(k, v);
  }
  request.headers.emplace_back("User-Agent", std::string("pgvigil/") + kVersion);
  request.body = body;
  request.content_type = "application/json";
  // One deadline for the lookup and the request: what the lookup used is not given again.
  auto reply = client_.Send(request, {timeout, timeout, timeout}, timeout);
  if (!reply) {
    const HttpError& e = reply.error();
    switch (e.kind) {
      case HttpErrorKind::kDns:
        a.outcome = Outcome::kRetryable;
        a.reason = e.timed_out ? "timeout" : "connection";
        a.error = "host \"" + ep.host + "\" does not resolve: " + e.message;
        return a;
      case HttpErrorKind::kTlsVerify:
        a.outcome = Outcome::kFatal;
        a.reason = "tls";
        break;
      case HttpErrorKind::kTls:
        a.outcome = Outcome::kRetryable;
        a.reason = "tls";
        break;
      case HttpErrorKind::kConnection:
      case HttpErrorKind::kTimeout:
      case HttpErrorKind::kCanceled:
        a.outcome = Outcome::kRetryable;
        a.reason = e.timed_out ? "timeout" : "connection";
        break;
      case HttpErrorKind::kOther:
        a.outcome = Outcome::kFatal;
        a.reason = "other";
        break;
    }
    a.error = e.timed_out ? "timed out after " + std::to_string(timeout.count()) + "ms"
                          : "request failed: " + e.message;
    return a;
  }
  const int status = reply->status;
  if (status >= 200 && status < 300) {
    a.outcome = Outcome::kOk;
    a.rejected = RejectedSpans(reply->body);
    return a;
  }
  a.error = "HTTP " + std::to_string(status);
  if (!reply->body.empty()) a.error += ": " + Snippet(reply->body);
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
  if (a.outcome == Outcome::kRetryable && reply->retry_after) {
    a.retry_after = ParseRetryAfter(*reply->retry_after, std::chrono::system_clock::now());
  }
  return a;
}

}  // namespace pgvigil
