#pragma once
// OTLP/JSON encoding of spans: an ExportTraceServiceRequest as the OTLP spec's protobuf JSON
// mapping has it (lowerCamelCase keys, hex ids, integer enums, 64-bit integers as decimal
// strings, times in startTimeUnixNano/endTimeUnixNano). Used for POST /v1/traces and for
// GET /traces. Pure functions, thread-safe.
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "tracing/span.hpp"

namespace pgvigil {

// Who emits the spans: the OTLP resource.
struct TraceResource {
  std::string service_name = "pgvigil";
  std::string service_version;
  std::string service_instance_id;  // a random UUID per process by default
  Attributes extra;                 // k8s.pod.name, k8s.namespace.name, ...
};

using TracingEnvLookup = std::function<std::optional<std::string>(const char* name)>;
std::optional<std::string> TracingProcessEnv(const char* name);  // std::getenv, "" -> nullopt

// Builds the resource: service.instance.id is a fresh random UUID; k8s.pod.name comes from
// POD_NAME or K8S_POD_NAME, k8s.namespace.name from POD_NAMESPACE or K8S_NAMESPACE_NAME (the
// names a Downward API env block usually uses), omitted when unset.
TraceResource DetectResource(std::string service_name, std::string service_version,
                             const TracingEnvLookup& env = TracingProcessEnv);

nlohmann::json AttributeValueToJson(const AttributeValue& v);  // {"stringValue": ...} etc.
nlohmann::json AttributesToJson(const Attributes& attributes);
nlohmann::json SpanToJson(const Span& span);

// The whole ExportTraceServiceRequest: one resourceSpans, one scopeSpans (scope "pgvigil").
nlohmann::json ExportRequestJson(const TraceResource& resource, std::span<const Span> spans);
std::string EncodeExportRequest(const TraceResource& resource, std::span<const Span> spans);

}  // namespace pgvigil
