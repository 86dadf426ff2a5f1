#include <nlohmann/json.hpp>

#include "tracing/otlp_exporter.hpp"
#include "util/time_format.hpp"

// OtlpExporter's status: what each attempt leaves behind for /health and the metrics.
namespace pgvigil {

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
  if (s.last_export_at) j["last_export_at"] = FormatRfc3339Utc(*s.last_export_at, 0);
  if (s.last_success_at) j["last_success_at"] = FormatRfc3339Utc(*s.last_success_at, 0);
  return j;
}

std::string OtlpExporter::DisabledStatusJson() { return R"({"enabled":false})"; }

}  // namespace pgvigil
