#include "tracing/span_buffer.hpp"

#include <catch2/catch.hpp>

using namespace pgvigil;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

Span MakeSpan(const std::string& name, std::chrono::milliseconds duration, bool error) {
  Span s;
  s.trace_id = NewTraceId();
  s.span_id = NewSpanId();
  s.name = name;
  s.end = std::chrono::system_clock::now();
  s.start = s.end - duration;
  if (error) s.status = {StatusCode::kError, "boom"};
  return s;
}

}  // namespace

TEST_CASE("ring buffer keeps the newest spans up to its capacity", "[tracing]") {
  SpanBuffer buf(5, TraceResource{});
  for (int i = 0; i < 12; ++i) buf.Consume({MakeSpan("s" + std::to_string(i), 1ms, false)});
  CHECK(buf.size() == 5);
  CHECK(buf.capacity() == 5);
  CHECK(buf.evicted() == 7);
  auto all = buf.Query(std::nullopt, false, 100);
  REQUIRE(all.size() == 5);
  CHECK(all.front().name == "s11");  // newest first
  CHECK(all.back().name == "s7");
  auto two = buf.Query(std::nullopt, false, 2);
  REQUIRE(two.size() == 2);
  CHECK(two[1].name == "s10");
}

TEST_CASE("ring buffer filters by duration and error", "[tracing]") {
  SpanBuffer buf(100, TraceResource{});
  buf.Consume({MakeSpan("fast-ok", 10ms, false), MakeSpan("slow-ok", 300ms, false),
               MakeSpan("fast-err", 5ms, true), MakeSpan("slow-err", 900ms, true)});
  auto names = [](const std::vector<Span>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) out.push_back(s.name);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names(buf.Query(250ms, false, 100)) == V{"slow-err", "slow-ok"});
  CHECK(names(buf.Query(std::nullopt, true, 100)) == V{"slow-err", "fast-err"});
  CHECK(names(buf.Query(250ms, true, 100)) == V{"slow-err"});
  CHECK(names(buf.Query(1s, false, 100)).empty());

  json doc = json::parse(TracesJson(buf, 250ms, false, 100));
  const json& spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"];
  REQUIRE(spans.size() == 2);
  CHECK(spans[0]["name"] == "slow-err");
  CHECK(spans[0]["status"]["code"] == 2);
}

TEST_CASE("GET /traces query parameters parse or explain the problem", "[tracing]") {
  std::string err;
  auto q = ParseTracesQuery({{"min_duration", "250ms"}, {"error", "true"}, {"limit", "10"}}, &err);
  REQUIRE(q);
  CHECK(q->min_duration == 250ms);
  CHECK(q->errors_only);
  CHECK(q->limit == 10);

  auto d = ParseTracesQuery({}, &err);
  REQUIRE(d);
  CHECK(!d->min_duration);
  CHECK(!d->errors_only);
  CHECK(d->limit == TracesQuery::kDefaultLimit);

  CHECK(!ParseTracesQuery({{"min_duration", "250"}}, &err));
  CHECK(err.find("min_duration") != std::string::npos);
  CHECK(err.find("250ms") != std::string::npos);
  CHECK(!ParseTracesQuery({{"error", "maybe"}}, &err));
  CHECK(err.find("true or false") != std::string::npos);
  CHECK(!ParseTracesQuery({{"limit", "-1"}}, &err));
  CHECK(!ParseTracesQuery({{"limit", "0"}}, &err));
  CHECK(!ParseTracesQuery({{"bogus", "1"}}, &err));
  CHECK(err.find("bogus") != std::string::npos);

  CHECK(ParseSpanDuration("1.5s") == 1500ms);
  CHECK(ParseSpanDuration("1m30s") == 90s);
  CHECK(ParseSpanDuration("500us") == 500us);
  CHECK(ParseSpanDuration("0s") == 0ns);
  CHECK(!ParseSpanDuration(""));
  CHECK(!ParseSpanDuration("ms"));
  CHECK(!ParseSpanDuration("-1s"));
  CHECK(!ParseSpanDuration("5x"));
  CHECK(!ParseSpanDuration("99999999999h"));
}
