// libFuzzer target for the OTLP/JSON encoder: spans built from fuzz bytes (arbitrary bytes in
// names and strings, NaN/Inf doubles, extreme integers and times) must encode to text that parses
// as JSON and keeps the OTLP shape (one resourceSpans/scopeSpans, every span, hex ids, decimal
// string times). Built by fuzz/run.sh.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tracing/otlp_json.hpp"

namespace {

pgvigil::SpanTime FuzzTime(FuzzedDataProvider& in) {
  return pgvigil::SpanTime(std::chrono::duration_cast<pgvigil::SpanTime::duration>(
      std::chrono::nanoseconds(in.ConsumeIntegral<std::int64_t>())));
}

void FuzzAttributes(FuzzedDataProvider& in, pgvigil::Attributes& attrs) {
  const int n = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < n; ++i) {
    std::string key = in.ConsumeRandomLengthString(32);
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0:
        attrs.Set(key, std::string_view(in.ConsumeRandomLengthString(128)));
        break;
      case 1:
        attrs.Set(key, in.ConsumeIntegral<std::int64_t>());
        break;
      case 2:
        attrs.Set(key, in.ConsumeBool());
        break;
      case 3: {
        // Raw bit patterns reach NaN, +-Inf and subnormals.
        std::uint64_t bits = in.ConsumeIntegral<std::uint64_t>();
        double d;
        static_assert(sizeof d == sizeof bits);
        __builtin_memcpy(&d, &bits, sizeof d);
        attrs.Set(key, d);
        break;
      }
    }
  }
}

bool IsHex(const nlohmann::json& j, size_t len) {
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsDecimal(const nlohmann::json& j) {
  if (!j.is_string()) return false;
  const std::string& s = j.get_ref<const std::string&>();
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  pgvigil::TraceResource resource;
  resource.service_name = in.ConsumeRandomLengthString(32);
  resource.service_version = in.ConsumeRandomLengthString(16);
  resource.service_instance_id = in.ConsumeRandomLengthString(40);
  FuzzAttributes(in, resource.extra);

  std::vector<pgvigil::Span> spans(in.ConsumeIntegralInRange<size_t>(0, 6));
  for (pgvigil::Span& s : spans) {
    in.ConsumeData(s.trace_id.data(), s.trace_id.size());
    in.ConsumeData(s.span_id.data(), s.span_id.size());
    if (in.ConsumeBool()) {
      pgvigil::SpanId parent{};
      in.ConsumeData(parent.data(), parent.size());
      s.parent_span_id = parent;
    }
    s.name = in.ConsumeRandomLengthString(128);
    s.kind = static_cast<pgvigil::SpanKind>(in.ConsumeIntegralInRange<int>(0, 5));
    s.start = FuzzTime(in);
    s.end = FuzzTime(in);
    FuzzAttributes(in, s.attributes);
    s.status.code = static_cast<pgvigil::StatusCode>(in.ConsumeIntegralInRange<int>(0, 2));
    s.status.message = in.ConsumeRandomLengthString(64);
    const int events = in.ConsumeIntegralInRange<int>(0, 3);
    for (int e = 0; e < events; ++e) {
      pgvigil::SpanEvent ev;
      ev.name = in.ConsumeRandomLengthString(32);
      ev.time = FuzzTime(in);
      FuzzAttributes(in, ev.attributes);
      s.events.push_back(std::move(ev));
    }
  }

  const std::string text = pgvigil::EncodeExportRequest(resource, spans);
  // Throws (and so fails the run) on anything that is not JSON.
  const nlohmann::json j = nlohmann::json::parse(text);
  const nlohmann::json& rs = j.at("resourceSpans");
  if (!rs.is_array() || rs.size() != 1) std::abort();
  const nlohmann::json& ss = rs[0].at("scopeSpans");
  if (!ss.is_array() || ss.size() != 1) std::abort();
  const nlohmann::json& out = ss[0].at("spans");
  if (!out.is_array() || out.size() != spans.size()) std::abort();
  for (size_t i = 0; i < spans.size(); ++i) {
    const nlohmann::json& s = out[i];
    if (!IsHex(s.at("traceId"), 32) || !IsHex(s.at("spanId"), 16)) std::abort();
    if (s.contains("parentSpanId") != spans[i].parent_span_id.has_value()) std::abort();
    if (spans[i].parent_span_id && !IsHex(s.at("parentSpanId"), 16)) std::abort();
    if (!IsDecimal(s.at("startTimeUnixNano")) || !IsDecimal(s.at("endTimeUnixNano"))) {
      std::abort();
    }
    if (s.at("kind").get<int>() != static_cast<int>(spans[i].kind)) std::abort();
    if (!s.at("attributes").is_array() || s.at("attributes").size() != spans[i].attributes.size()) {
      std::abort();
    }
  }
  return 0;
}
