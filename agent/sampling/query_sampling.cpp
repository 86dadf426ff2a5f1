#include "sampling/query_sampling.hpp"

#include "util/time_format.hpp"

namespace pgvigil {
namespace {

// Texts are sanitized already; `replace` is a second line of defence so dump() never throws.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

QuerySampling::QuerySampling(const SamplingSettings& settings, prometheus::Registry& registry,
                             std::string own_application_name)
    : settings_(settings),
      metrics_(registry, settings.top_n_labels),
      statements_(settings_, metrics_),
      activity_(settings_, metrics_, std::move(own_application_name)),
      visibility_(registry) {
  Publish(std::chrono::system_clock::now());
}

SamplerRunResult QuerySampling::RunStatements(Connection& conn, SteadyTime deadline,
                                              SystemTime now) {
  SamplerRunResult r = statements_.Run(conn, deadline, now);
  Publish(now);
  return r;
}

SamplerRunResult QuerySampling::RunActivity(Connection& conn, SteadyTime deadline, SystemTime now) {
  SamplerRunResult r = activity_.Run(conn, deadline, now);
  // Read in the activity statement itself; a failed run keeps the last answer.
  if (r.status == CollectorStatus::kOk && activity_.visibility()) {
    visibility_.Record(activity_.visibility()->first, activity_.visibility()->second);
  }
  Publish(now);
  return r;
}

void QuerySampling::Publish(SystemTime) {
  auto statements = std::make_shared<const nlohmann::json>(statements_.ToJson());
  auto activity = std::make_shared<const nlohmann::json>(activity_.ToJson());
  auto history = statements_.HistorySnapshotNow();

  nlohmann::json status;
  status["enabled"] = settings_.enabled;
  status["query_text"] = QueryTextModeName(settings_.query_text);
  status["statements"] = statements_.StatusJson();
  status["activity"] = activity_.StatusJson();
  status["visibility"] = visibility_.ToJson();
  if (statements_.status() == CollectorStatus::kUnavailable) {
    status["hint"] = statements_.message();
  } else if (visibility_.full() == false) {
    status["hint"] = status["visibility"]["hint"];
  }
  std::lock_guard lock(mu_);
  statements_json_ = std::move(statements);
  activity_json_ = std::move(activity);
  history_ = std::move(history);
  status_ = std::move(status);
}

std::optional<QueriesRequest> QuerySampling::ParseRequest(
    const std::multimap<std::string, std::string>& params, SystemTime now,
    std::string* error) const {
  return ParseQueriesRequest(params, settings_.top_n, settings_.history, now, error);
}

std::string QuerySampling::QueriesJson() const {
  const auto now = std::chrono::system_clock::now();
  std::string error;
  auto request = ParseRequest({}, now, &error);
  return QueriesJson(request.value_or(QueriesRequest{}), now);
}

std::string QuerySampling::QueriesJson(const QueriesRequest& request, SystemTime now) const {
  std::shared_ptr<const nlohmann::json> statements, activity;
  std::shared_ptr<const HistorySnapshot> history;
  {
    std::lock_guard lock(mu_);
    statements = statements_json_;
    activity = activity_json_;
    history = history_;
  }
  try {
    nlohmann::json queries;
    queries["generated_at"] = FormatRfc3339Utc(now);
    queries["enabled"] = settings_.enabled;
    queries["query_text"] = QueryTextModeName(settings_.query_text);
    queries["window"] =
        history ? AggregateHistory(*history, request, now, settings_.query_text) : nlohmann::json();
    queries["statements"] = statements ? *statements : nlohmann::json();
    queries["activity"] = activity ? *activity : nlohmann::json();
    return Dump(queries);
  } catch (const std::exception& e) {
    // Nothing may escape into the HTTP thread; the answer says what went wrong.
    return Dump(nlohmann::json{{"error", std::string("building /queries failed: ") + e.what()}});
  }
}

std::string QuerySampling::StatusJson() const { return Dump(Status()); }

nlohmann::json QuerySampling::Status() const {
  std::lock_guard lock(mu_);
  return status_;
}

}  // namespace pgvigil
