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
  visibility_.Check(conn, deadline);
  SamplerRunResult r = activity_.Run(conn, deadline, now);
  Publish(now);
  return r;
}

void QuerySampling::Publish(SystemTime now) {
  nlohmann::json queries;
  queries["generated_at"] = FormatRfc3339Utc(now);
  queries["enabled"] = settings_.enabled;
  queries["query_text"] = QueryTextModeName(settings_.query_text);
  queries["statements"] = statements_.ToJson();
  queries["activity"] = activity_.ToJson();

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
  std::string q = Dump(queries), s = Dump(status);
  std::lock_guard lock(mu_);
  queries_json_ = std::move(q);
  status_json_ = std::move(s);
}

std::string QuerySampling::QueriesJson() const {
  std::lock_guard lock(mu_);
  return queries_json_;
}

std::string QuerySampling::StatusJson() const {
  std::lock_guard lock(mu_);
  return status_json_;
}

}  // namespace pgvigil
