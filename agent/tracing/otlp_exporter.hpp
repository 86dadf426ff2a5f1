#pragma once
// OtlpExporter: ships kept spans to an OpenTelemetry collector over OTLP/HTTP JSON
// (POST <endpoint>, normally http://host:4318/v1/traces).
//
// Owns one thread (started by the constructor, stopped by Shutdown or the destructor). Spans
// wait in a bounded queue; the thread sends a batch every `export_interval` or as soon as
// `max_batch` spans are waiting. Retries (exponential backoff with jitter, Retry-After honoured
// and capped, at most `max_retries` per batch) only on 429/502/503/504 and connection failures
// or timeouts; any other status drops the batch. Every lost span is counted by reason.
//
// Thread-safety: Consume/Enqueue, Status and StatusJson may be called from any thread and never
// block on the network (one short mutex). Shutdown is called once, by the owner.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "config/settings.hpp"
#include "net/http_client.hpp"
#include "tracing/otlp_json.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"
#include "tracing/tracing_metrics.hpp"

namespace pgvigil {

struct OtlpExporterOptions {
  HttpEndpoint endpoint;  // parsed by config (config/endpoints.hpp: ParseOtlpEndpoint)
  std::map<std::string, std::string> headers;  // values already resolved (may be secrets)
  std::chrono::milliseconds export_interval{5000};
  std::chrono::milliseconds export_timeout{10'000};  // connect, read and write timeouts each
  size_t queue_spans = 2048;
  size_t max_batch = 512;
  int max_retries = 5;  // retries after the first attempt, per batch
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds retry_after_cap{30'000};

  static OtlpExporterOptions FromSettings(const TracingSettings& s);
};

struct ExporterStatus {
  std::string endpoint;  // redacted
  size_t queue_length = 0;
  size_t queue_capacity = 0;
  std::uint64_t exported = 0;
  std::uint64_t dropped = 0;
  std::uint64_t failed_attempts = 0;
  int consecutive_failures = 0;
  std::optional<SpanTime> last_export_at;  // last finished attempt
  std::string last_result;                 // "" (none yet) | "ok" | an error reason
  std::string last_error;                  // short text, e.g. "HTTP 503", no secrets
  std::optional<SpanTime> last_success_at;
};

class OtlpExporter : public SpanSink {
 public:
  // `metrics` may be null; it must outlive the exporter.
  OtlpExporter(OtlpExporterOptions options, TraceResource resource,
               TracingMetrics* metrics = nullptr);
  ~OtlpExporter() override;  // Shutdown(export_timeout) if not done yet
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  void Consume(const std::vector<Span>& spans) override;
  // Queues one span; false (and counted as dropped, queue_full) when the queue is full or the
  // exporter is shutting down.
  bool Enqueue(Span span);

  // Stops accepting spans, sends what is queued until `deadline` from now, then aborts any
  // request in flight and joins the thread. Unsent spans count as dropped (shutdown).
  void Shutdown(std::chrono::milliseconds deadline);

  ExporterStatus Status() const;
  std::string StatusJson() const;        // for the "tracing" section of /health
  nlohmann::json StatusSection() const;  // the same as a JSON value (for the snapshot)
  // The same section when export is off (otlp_endpoint empty): {"enabled":false}.
  static std::string DisabledStatusJson();
  static nlohmann::json DisabledStatusSection() { return {{"enabled", false}}; }

 private:
  enum class Outcome { kOk, kRetryable, kFatal };
  struct Attempt {
    Outcome outcome = Outcome::kFatal;
    std::string reason;  // metric label when not ok
    std::string error;   // human text when not ok
    std::optional<std::chrono::milliseconds> retry_after;
    std::uint64_t rejected = 0;  // partial success
  };

  void Run(std::stop_token stop);
  void ExportBatch(std::vector<Span>& batch, const std::stop_token& stop);
  Attempt PostOnce(const std::string& body, std::chrono::milliseconds timeout);
  void RecordAttempt(const Attempt& a, double seconds);
  void Drop(std::string_view reason, size_t n);
  // Waits until `until`, returning early (false) once the flush deadline has passed.
  bool SleepUntil(std::chrono::steady_clock::time_point until, const std::stop_token& stop);
  std::chrono::milliseconds RequestTimeout() const;

  const OtlpExporterOptions options_;
  HttpClient client_;  // thread-safe Abort(); Send from the exporter thread only
  const TraceResource resource_;
  TracingMetrics* const metrics_;

  mutable std::mutex mu_;  // guards everything below up to the thread
  std::condition_variable_any cv_;
  std::deque<Span> queue_;
  bool accepting_ = true;
  std::optional<std::chrono::steady_clock::time_point> flush_deadline_;
  ExporterStatus status_;
  bool done_ = false;  // the thread has finished

  std::once_flag shutdown_once_;
  std::jthread thread_;  // last: starts after everything above exists
};

}  // namespace pgvigil
