#include "telemetry/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "telemetry/process_metrics.hpp"
#include "util/heap_trim.hpp"
#include "util/utf8.hpp"

namespace pgvigil {

AgentMetrics::AgentMetrics(std::string version)
    : registry_(std::make_shared<prometheus::Registry>()), health_(*registry_), pools_(*registry_) {
  auto& r = *registry_;
  internal_errors_ = &prometheus::BuildCounter()
                          .Name("pgvigil_internal_errors_total")
                          .Help(
                              "Exceptions caught in pgvigil's own threads (a bug, not a database "
                              "failure), by component; the loop goes on. See /health "
                              "internal_errors for the last message.")
                          .Register(r);
  for (const char* c : kInternalComponents) internal_errors_->Add({{"component", c}});
  prometheus::BuildGauge()
      .Name("pgvigil_build_info")
      .Help("pgvigil build information; the value is always 1.")
      .Register(r)
      .Add({{"version", std::move(version)}})
      .Set(1);
}

void AgentMetrics::RecordInternalError(const std::string& component) {
  internal_errors_->Add({{"component", component}}).Increment();
}

std::string AgentMetrics::Serialize() const {
  std::string page = SerializeFamilies();
  // At 200 databases the page is ~0.5 MB and collecting it allocated megabytes of small blocks,
  // freed by now: give their pages back, or every scrape's peak stays in RSS.
  TrimHeapAfter(page.size());
  return page;
}

std::string AgentMetrics::SerializeFamilies() const {
  auto families = registry_->Collect();
  auto process = CollectProcessMetrics();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  // Label values come from the database (datname, usename, settings): one that is not valid
  // UTF-8 (a name made in a SQL_ASCII database) would make Prometheus reject the whole scrape.
  for (auto& family : families) {
    for (auto& metric : family.metric) {
      for (auto& label : metric.label) {
        if (!IsCleanUtf8(label.value)) label.value = SanitizeUtf8(label.value);
      }
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();  // C++20: the buffer itself, no copy
}

}  // namespace pgvigil
