#include "tracing/otlp_json.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <regex>

#include "tracing/tracer.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class VectorSink : public SpanSink {
 public:
  void Consume(const std::vector<Span>& spans) override {
    spans_.insert(spans_.end(), spans.begin(), spans.end());
  }
  std::vector<Span> spans_;
};

bool IsDecimalString(const json& v) {
  return v.is_string() && std::regex_match(v.get<std::string>(), std::regex("^[0-9]+$"));
}

// key -> value object, checking the attribute list's shape on the way.
std::map<std::string, json> AttrMap(const json& attrs) {
  REQUIRE(attrs.is_array());
  std::map<std::string, json> out;
  for (const auto& a : attrs) {
    REQUIRE(a.is_object());
    REQUIRE(a.size() == 2);
    REQUIRE(a.at("key").is_string());
    REQUIRE(a.at("value").is_object());
    REQUIRE(a.at("value").size() == 1);  // exactly one typed field
    out[a.at("key").get<std::string>()] = a.at("value");
  }
  return out;
}

// Every span in the document must follow the OTLP JSON mapping.
void CheckSpanSchema(const json& s) {
  const std::regex hex32("^[0-9a-f]{32}$"), hex16("^[0-9a-f]{16}$");
  REQUIRE(s.is_object());
  REQUIRE(std::regex_match(s.at("traceId").get<std::string>(), hex32));
  REQUIRE(std::regex_match(s.at("spanId").get<std::string>(), hex16));
  if (s.contains("parentSpanId")) {
    REQUIRE(std::regex_match(s.at("parentSpanId").get<std::string>(), hex16));
  }
  REQUIRE(s.at("name").is_string());
  REQUIRE(s.at("kind").is_number_integer());
  REQUIRE(IsDecimalString(s.at("startTimeUnixNano")));
  REQUIRE(IsDecimalString(s.at("endTimeUnixNano")));
  REQUIRE(std::stoull(s.at("endTimeUnixNano").get<std::string>()) >=
          std::stoull(s.at("startTimeUnixNano").get<std::string>()));
  REQUIRE(s.at("status").is_object());
  REQUIRE(s.at("status").at("code").is_number_integer());
  for (const auto& [key, v] : AttrMap(s.at("attributes"))) {
    if (v.contains("intValue")) REQUIRE(IsDecimalString(v.at("intValue")));
    if (v.contains("stringValue")) REQUIRE(v.at("stringValue").is_string());
    if (v.contains("boolValue")) REQUIRE(v.at("boolValue").is_boolean());
    if (v.contains("doubleValue")) REQUIRE(v.at("doubleValue").is_number());
  }
}

const TraceId kLinkedTrace = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                              0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
const SpanId kLinkedSpan = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};

}  // namespace

TEST_CASE("export request follows the OTLP JSON mapping field by field", "[tracing]") {
  VectorSink sink;
  Tracer tracer({}, {&sink});
  {
    ScopedSpan root = tracer.StartSpan("pgvigil.probe", SpanKind::kInternal);
    root.SetAttribute("pgvigil.probe.attempt", 3);
    root.SetAttribute("pgvigil.ratio", 0.25);
    root.SetAttribute("pgvigil.cold_start", false);
    ScopedSpan q = StartDbClientSpan(tracer,
                                     {.db_namespace = "postgres",
                                      .operation = "SELECT",
                                      .query_text = "SELECT ?",
                                      .server_address = "127.0.0.1",
                                      .server_port = 6543},
                                     &root);
    q.SetDbError("28P01", "password authentication failed for user \"vigil\"", "auth");
    q.AddEvent("retry", {}, std::chrono::system_clock::now());
    q.AddLink(SpanLink{kLinkedTrace, kLinkedSpan, 0x01, true, {}});
  }
  REQUIRE(sink.spans_.size() == 2);

  auto env = [](const char* name) -> std::optional<std::string> {
    std::string n = name;
    if (n == "K8S_POD_NAME") return "app-7d9f-xyz";
    if (n == "POD_NAMESPACE") return "prod";
    return std::nullopt;
  };
  TraceResource resource = DetectResource("my-sidecar", "0.1.0", env);
  const std::string text = EncodeExportRequest(resource, sink.spans_);
  const json doc = json::parse(text);

  REQUIRE(doc.size() == 1);
  REQUIRE(doc.at("resourceSpans").is_array());
  REQUIRE(doc["resourceSpans"].size() == 1);
  const json& rs = doc["resourceSpans"][0];
  auto res_attrs = AttrMap(rs.at("resource").at("attributes"));
  CHECK(res_attrs.at("service.name") == json{{"stringValue", "my-sidecar"}});
  CHECK(res_attrs.at("service.version") == json{{"stringValue", "0.1.0"}});
  CHECK(res_attrs.at("service.instance.id").at("stringValue").get<std::string>().size() == 36);
  CHECK(res_attrs.at("k8s.pod.name") == json{{"stringValue", "app-7d9f-xyz"}});
  CHECK(res_attrs.at("k8s.namespace.name") == json{{"stringValue", "prod"}});

  REQUIRE(rs.at("scopeSpans").size() == 1);
  const json& ss = rs["scopeSpans"][0];
  CHECK(ss.at("scope").at("name") == "pgvigil");
  CHECK(ss.at("scope").at("version") == "0.1.0");
  const json& spans = ss.at("spans");
  REQUIRE(spans.size() == 2);
  for (const auto& s : spans) CheckSpanSchema(s);

  const json* root = nullptr;
  const json* query = nullptr;
  for (const auto& s : spans) (s["name"] == "pgvigil.probe" ? root : query) = &s;
  REQUIRE((root && query));
  CHECK(!root->contains("parentSpanId"));
  CHECK((*root)["kind"] == 1);
  CHECK((*root)["status"]["code"] == 0);
  auto root_attrs = AttrMap((*root)["attributes"]);
  CHECK(root_attrs.at("pgvigil.probe.attempt") == json{{"intValue", "3"}});
  CHECK(root_attrs.at("pgvigil.ratio") == json{{"doubleValue", 0.25}});
  CHECK(root_attrs.at("pgvigil.cold_start") == json{{"boolValue", false}});

  CHECK((*query)["name"] == "SELECT postgres");
  CHECK((*query)["kind"] == 3);
  CHECK((*query)["traceId"] == (*root)["traceId"]);
  CHECK((*query)["parentSpanId"] == (*root)["spanId"]);
  CHECK((*query)["status"]["code"] == 2);
  CHECK((*query)["status"]["message"] == "password authentication failed for user \"vigil\"");
  auto q_attrs = AttrMap((*query)["attributes"]);
  CHECK(q_attrs.at("db.system.name") == json{{"stringValue", "postgresql"}});
  CHECK(q_attrs.at("db.namespace") == json{{"stringValue", "postgres"}});
  CHECK(q_attrs.at("db.operation.name") == json{{"stringValue", "SELECT"}});
  CHECK(q_attrs.at("db.query.text") == json{{"stringValue", "SELECT ?"}});
  CHECK(q_attrs.at("db.response.status_code") == json{{"stringValue", "28P01"}});
  CHECK(q_attrs.at("error.type") == json{{"stringValue", "28P01"}});
  CHECK(q_attrs.at("pgvigil.error.kind") == json{{"stringValue", "auth"}});
  REQUIRE((*query)["links"].size() == 1);
  const json& link = (*query)["links"][0];
  CHECK(link.at("traceId") == "0af7651916cd43dd8448eb211c80319c");
  CHECK(link.at("spanId") == "b7ad6b7169203331");
  CHECK(link.at("flags") == 0x301);  // sampled, has is_remote, is remote
  CHECK(!link.contains("attributes"));
  CHECK(!root->contains("links"));
  CHECK(q_attrs.at("server.address") == json{{"stringValue", "127.0.0.1"}});
  CHECK(q_attrs.at("server.port") == json{{"intValue", "6543"}});
  REQUIRE((*query)["events"].size() == 1);
  CHECK((*query)["events"][0]["name"] == "retry");
  CHECK(IsDecimalString((*query)["events"][0]["timeUnixNano"]));

  // Times are the spans' own, in nanoseconds.
  const Span& qs = sink.spans_[0].name == "SELECT postgres" ? sink.spans_[0] : sink.spans_[1];
  CHECK((*query)["startTimeUnixNano"] == std::to_string(UnixNanos(qs.start)));
  CHECK((*query)["endTimeUnixNano"] == std::to_string(UnixNanos(qs.end)));
  CHECK(UnixNanos(qs.start) > 1'600'000'000'000'000'000ull);
}

TEST_CASE("resource without Kubernetes env; odd values still encode", "[tracing]") {
  auto no_env = [](const char*) -> std::optional<std::string> { return std::nullopt; };
  TraceResource r = DetectResource("", "1.2.3", no_env);
  CHECK(r.service_name == "pgvigil");
  CHECK(r.extra.empty());
  TraceResource r2 = DetectResource("x", "1.2.3", no_env);
  CHECK(r.service_instance_id != r2.service_instance_id);

  Span s;
  s.trace_id = NewTraceId();
  s.span_id = NewSpanId();
  s.name = std::string("bad \xff utf8");
  s.start = s.end = std::chrono::system_clock::now();
  s.attributes.Set("nan", std::numeric_limits<double>::quiet_NaN());
  s.attributes.Set("inf", -std::numeric_limits<double>::infinity());
  s.attributes.Set("big", std::int64_t{-9'000'000'000'000'000'000});
  std::vector<Span> spans{s};
  json doc = json::parse(EncodeExportRequest(r, spans));
  const json& js = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  auto attrs = AttrMap(js["attributes"]);
  CHECK(attrs.at("nan") == json{{"doubleValue", "NaN"}});
  CHECK(attrs.at("inf") == json{{"doubleValue", "-Infinity"}});
  CHECK(attrs.at("big") == json{{"intValue", "-9000000000000000000"}});
  CHECK(js["name"].get<std::string>().starts_with("bad "));

  json empty = json::parse(EncodeExportRequest(r, {}));
  CHECK(empty["resourceSpans"][0]["scopeSpans"][0]["spans"].is_array());
  CHECK(empty["resourceSpans"][0]["scopeSpans"][0]["spans"].empty());
}
