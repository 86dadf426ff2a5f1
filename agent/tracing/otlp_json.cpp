#include "tracing/otlp_json.hpp"

#include <cmath>
#include <cstdlib>

namespace pgvigil {

std::optional<std::string> TracingProcessEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

TraceResource DetectResource(std::string service_name, std::string service_version,
                             const TracingEnvLookup& env) {
  TraceResource r;
  r.service_name = service_name.empty() ? "pgvigil" : std::move(service_name);
  r.service_version = std::move(service_version);
  r.service_instance_id = NewUuid();
  auto first = [&](const char* a, const char* b) -> std::optional<std::string> {
    if (auto v = env(a)) return v;
    return env(b);
  };
  if (auto pod = first("POD_NAME", "K8S_POD_NAME")) r.extra.Set("k8s.pod.name", *pod);
  if (auto ns = first("POD_NAMESPACE", "K8S_NAMESPACE_NAME")) {
    r.extra.Set("k8s.namespace.name", *ns);
  }
  return r;
}

nlohmann::json AttributeValueToJson(const AttributeValue& v) {
  struct Visitor {
    nlohmann::json operator()(const std::string& s) const { return {{"stringValue", s}}; }
    // Protobuf JSON writes int64 as a decimal string.
    nlohmann::json operator()(std::int64_t i) const { return {{"intValue", std::to_string(i)}}; }
    nlohmann::json operator()(double d) const {
      // JSON has no NaN/Infinity; protobuf JSON spells them as strings.
      if (std::isnan(d)) return {{"doubleValue", "NaN"}};
      if (std::isinf(d)) return {{"doubleValue", d > 0 ? "Infinity" : "-Infinity"}};
      return {{"doubleValue", d}};
    }
    nlohmann::json operator()(bool b) const { return {{"boolValue", b}}; }
  };
  return std::visit(Visitor{}, v);
}

nlohmann::json AttributesToJson(const Attributes& attributes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : attributes.items()) {
    out.push_back({{"key", a.key}, {"value", AttributeValueToJson(a.value)}});
  }
  return out;
}

nlohmann::json SpanToJson(const Span& span) {
  nlohmann::json j;
  j["traceId"] = ToHex(span.trace_id);
  j["spanId"] = ToHex(span.span_id);
  if (span.parent_span_id) j["parentSpanId"] = ToHex(*span.parent_span_id);
  j["name"] = span.name;
  j["kind"] = static_cast<int>(span.kind);
  j["startTimeUnixNano"] = std::to_string(UnixNanos(span.start));
  j["endTimeUnixNano"] = std::to_string(UnixNanos(span.end));
  j["attributes"] = AttributesToJson(span.attributes);
  if (!span.events.empty()) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : span.events) {
      events.push_back({{"timeUnixNano", std::to_string(UnixNanos(e.time))},
                        {"name", e.name},
                        {"attributes", AttributesToJson(e.attributes)}});
    }
    j["events"] = std::move(events);
  }
  if (!span.links.empty()) {
    nlohmann::json links = nlohmann::json::array();
    for (const auto& l : span.links) {
      // Span.flags / Link.flags: W3C trace flags in bits 0-7, bit 8 "has is_remote", bit 9
      // "is remote" (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK).
      const std::uint32_t flags = l.trace_flags | 0x100u | (l.remote ? 0x200u : 0u);
      nlohmann::json link = {
          {"traceId", ToHex(l.trace_id)}, {"spanId", ToHex(l.span_id)}, {"flags", flags}};
      if (!l.attributes.empty()) link["attributes"] = AttributesToJson(l.attributes);
      links.push_back(std::move(link));
    }
    j["links"] = std::move(links);
  }
  // Written even when UNSET (0): explicit defaults are valid protobuf JSON and easier to read.
  nlohmann::json status = {{"code", static_cast<int>(span.status.code)}};
  if (span.status.code == StatusCode::kError && !span.status.message.empty()) {
    status["message"] = span.status.message;
  }
  j["status"] = std::move(status);
  return j;
}

nlohmann::json ExportRequestJson(const TraceResource& resource, std::span<const Span> spans) {
  Attributes attrs;
  attrs.Set("service.name", resource.service_name);
  if (!resource.service_version.empty()) attrs.Set("service.version", resource.service_version);
  if (!resource.service_instance_id.empty()) {
    attrs.Set("service.instance.id", resource.service_instance_id);
  }
  for (const auto& a : resource.extra.items()) {
    std::visit([&](const auto& v) { attrs.Set(a.key, v); }, a.value);
  }
  nlohmann::json span_array = nlohmann::json::array();
  for (const auto& s : spans) span_array.push_back(SpanToJson(s));
  nlohmann::json scope = {{"name", "pgvigil"}};
  if (!resource.service_version.empty()) scope["version"] = resource.service_version;
  nlohmann::json scope_spans = {{"scope", std::move(scope)}, {"spans", std::move(span_array)}};
  nlohmann::json resource_spans = {{"resource", {{"attributes", AttributesToJson(attrs)}}},
                                   {"scopeSpans", nlohmann::json::array({std::move(scope_spans)})}};
  return {{"resourceSpans", nlohmann::json::array({std::move(resource_spans)})}};
}

std::string EncodeExportRequest(const TraceResource& resource, std::span<const Span> spans) {
  // Span names and attribute values come from the database (error messages, query text) and may
  // hold invalid UTF-8; replace rather than throw.
  return ExportRequestJson(resource, spans)
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pgvigil
