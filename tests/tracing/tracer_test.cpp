#include "tracing/tracer.hpp"

#include <catch2/catch.hpp>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "tracing/span.hpp"
#include "tracing/tracing_metrics.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;

namespace {

class CollectingSink : public SpanSink {
 public:
  void Consume(const std::vector<Span>& spans) override {
    std::lock_guard lock(mu_);
    batches_.push_back(spans);
  }
  std::vector<std::vector<Span>> batches() const {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::vector<Span> all() const {
    std::vector<Span> out;
    for (const auto& b : batches()) out.insert(out.end(), b.begin(), b.end());
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<Span>> batches_;
};

const Span* FindSpan(const std::vector<Span>& spans, const std::string& name) {
  for (const auto& s : spans) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

template <typename T>
T AttrAs(const Span& s, const char* key) {
  const AttributeValue* v = s.attributes.Find(key);
  REQUIRE(v != nullptr);
  REQUIRE(std::holds_alternative<T>(*v));
  return std::get<T>(*v);
}

}  // namespace

TEST_CASE("ids are random, non-zero and render as lowercase hex", "[tracing]") {
  std::set<std::string> trace_ids, span_ids;
  const std::regex hex32("^[0-9a-f]{32}$"), hex16("^[0-9a-f]{16}$");
  for (int i = 0; i < 1000; ++i) {
    std::string t = ToHex(NewTraceId());
    std::string s = ToHex(NewSpanId());
    REQUIRE(std::regex_match(t, hex32));
    REQUIRE(std::regex_match(s, hex16));
    REQUIRE(t != std::string(32, '0'));
    REQUIRE(s != std::string(16, '0'));
    trace_ids.insert(t);
    span_ids.insert(s);
  }
  CHECK(trace_ids.size() == 1000);
  CHECK(span_ids.size() == 1000);

  // Threads get independent streams.
  std::string other;
  std::thread([&] { other = ToHex(NewTraceId()); }).join();
  CHECK(trace_ids.count(other) == 0);

  std::string uuid = NewUuid();
  CHECK(std::regex_match(uuid, std::regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                          "[0-9a-f]{12}$")));
}

TEST_CASE("traceparent and sqlcommenter formatting", "[tracing]") {
  TraceId t{};
  SpanId s{};
  t[0] = 0x4b;
  t[15] = 0xf6;
  s[0] = 0x00;
  s[7] = 0xb7;
  const std::string tp = FormatTraceparent(t, s, true);
  CHECK(tp == "00-4b0000000000000000000000000000f6-00000000000000b7-01");
  CHECK(FormatTraceparent(t, s, false).ends_with("-00"));

  CHECK(SqlCommenter("SELECT 1", tp) == "SELECT 1 /*traceparent='" + tp + "'*/");
  CHECK(SqlCommenter("SELECT 1;  \n", tp) == "SELECT 1 /*traceparent='" + tp + "'*/;");
  CHECK(SqlCommenter("SELECT 1 -- probe", tp) == "SELECT 1 -- probe\n/*traceparent='" + tp + "'*/");
}

TEST_CASE("attributes keep their types and replace by key", "[tracing]") {
  Attributes a;
  a.Set("s", "literal");  // must not become a bool
  a.Set("i", 42);
  a.Set("u", 7u);
  a.Set("l", std::int64_t{1} << 40);
  a.Set("d", 1.5);
  a.Set("b", true);
  a.Set("str", std::string("x"));
  REQUIRE(a.size() == 7);
  CHECK(std::get<std::string>(*a.Find("s")) == "literal");
  CHECK(std::get<std::int64_t>(*a.Find("i")) == 42);
  CHECK(std::get<std::int64_t>(*a.Find("u")) == 7);
  CHECK(std::get<std::int64_t>(*a.Find("l")) == (std::int64_t{1} << 40));
  CHECK(std::get<double>(*a.Find("d")) == 1.5);
  CHECK(std::get<bool>(*a.Find("b")) == true);
  a.Set("i", "now a string");
  CHECK(a.size() == 7);
  CHECK(std::get<std::string>(*a.Find("i")) == "now a string");
  CHECK(a.Find("missing") == nullptr);
}

TEST_CASE("a trace is delivered whole when its root ends", "[tracing]") {
  CollectingSink sink;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  Tracer tracer({.sample_ratio = 1.0}, {&sink}, &metrics);

  ScopedSpan root = tracer.StartSpan("pgvigil.probe", SpanKind::kInternal);
  {
    ScopedSpan connect = tracer.StartSpan("db.connect", SpanKind::kClient, &root);
    connect.SetAttribute("pgvigil.cold_start", true);
  }  // ends by destruction
  ScopedSpan query = StartDbClientSpan(tracer,
                                       {.db_namespace = "neondb",
                                        .operation = "SELECT",
                                        .query_text = "SELECT ?",
                                        .server_address = "ep-x.neon.tech",
                                        .server_port = 5432},
                                       &root);
  CHECK(root.Traceparent() ==
        FormatTraceparent(root.context().trace_id, root.context().span_id, true));
  query.SetOk();
  query.End();
  CHECK(sink.batches().empty());  // held until the root decides
  root.End();
  root.End();  // idempotent

  auto batches = sink.batches();
  REQUIRE(batches.size() == 1);
  const auto& spans = batches[0];
  REQUIRE(spans.size() == 3);
  const Span* r = FindSpan(spans, "pgvigil.probe");
  const Span* c = FindSpan(spans, "db.connect");
  const Span* q = FindSpan(spans, "SELECT neondb");
  REQUIRE((r && c && q));
  CHECK(!r->parent_span_id.has_value());
  CHECK(c->trace_id == r->trace_id);
  CHECK(q->trace_id == r->trace_id);
  CHECK(c->parent_span_id == r->span_id);
  CHECK(q->parent_span_id == r->span_id);
  CHECK(c->span_id != q->span_id);
  CHECK(q->kind == SpanKind::kClient);
  CHECK(q->status.code == StatusCode::kOk);
  CHECK(AttrAs<std::string>(*q, "db.system.name") == "postgresql");
  CHECK(AttrAs<std::string>(*q, "db.namespace") == "neondb");
  CHECK(AttrAs<std::string>(*q, "db.operation.name") == "SELECT");
  CHECK(AttrAs<std::string>(*q, "db.query.text") == "SELECT ?");
  CHECK(AttrAs<std::string>(*q, "server.address") == "ep-x.neon.tech");
  CHECK(AttrAs<std::int64_t>(*q, "server.port") == 5432);
  CHECK(AttrAs<bool>(*c, "pgvigil.cold_start") == true);
  for (const auto& s : spans) CHECK(s.end >= s.start);
  CHECK(r->start <= q->start);
  CHECK(r->end >= q->end);
  CHECK(metrics.recorded().Value() == 3);
}

TEST_CASE("SetDbError: error.type is the SQLSTATE, the readable kind beside it", "[tracing]") {
  CollectingSink sink;
  Tracer tracer({}, {&sink});
  {
    ScopedSpan q = StartDbClientSpan(tracer, {.db_namespace = "app", .operation = "SELECT"});
    q.SetDbError("57P01", "terminating connection due to administrator command", "admin_shutdown");
    q.SetOk();  // does not clear an error
  }
  {
    ScopedSpan c = StartDbClientSpan(tracer, {.db_namespace = "app", .operation = "connect"});
    c.SetDbError("", "connection refused", "refused");
  }
  {
    ScopedSpan c = StartDbClientSpan(tracer, {.db_namespace = "app", .operation = "connect"});
    c.SetDbError("", "mystery", "");
  }
  auto spans = sink.all();
  REQUIRE(spans.size() == 3);
  CHECK(spans[0].status.code == StatusCode::kError);
  CHECK(spans[0].status.message == "terminating connection due to administrator command");
  CHECK(AttrAs<std::string>(spans[0], "db.response.status_code") == "57P01");
  CHECK(AttrAs<std::string>(spans[0], "error.type") == "57P01");
  CHECK(AttrAs<std::string>(spans[0], "pgvigil.error.kind") == "admin_shutdown");
  // No SQLSTATE (the server never answered): no status code, the kind is the error type.
  CHECK(spans[1].attributes.Find("db.response.status_code") == nullptr);
  CHECK(AttrAs<std::string>(spans[1], "error.type") == "refused");
  CHECK(spans[2].attributes.Find("db.response.status_code") == nullptr);
  CHECK(AttrAs<std::string>(spans[2], "error.type") == "_OTHER");
  CHECK(spans[2].attributes.Find("pgvigil.error.kind") == nullptr);
}

TEST_CASE("SetError on an INTERNAL span sets error.type only", "[tracing]") {
  CollectingSink sink;
  Tracer tracer({}, {&sink});
  {
    ScopedSpan a = tracer.StartSpan("pgvigil.collect.db_stats", SpanKind::kInternal);
    a.SetError("collector_error", "pgvigil.collect.db_stats failed");
  }
  {
    ScopedSpan b = tracer.StartSpan("pgvigil.probe", SpanKind::kInternal);
    b.SetError("", "mystery");
  }
  auto spans = sink.all();
  REQUIRE(spans.size() == 2);
  CHECK(AttrAs<std::string>(spans[0], "error.type") == "collector_error");
  CHECK(AttrAs<std::string>(spans[1], "error.type") == "_OTHER");
  for (const auto& s : spans) {
    CHECK(s.status.code == StatusCode::kError);
    CHECK(s.attributes.Find("db.response.status_code") == nullptr);
  }
}

TEST_CASE("links are kept on the span, bounded", "[tracing]") {
  CollectingSink sink;
  Tracer tracer({}, {&sink});
  SpanLink link{NewTraceId(), NewSpanId(), 0x01, true, {}};
  {
    ScopedSpan s = tracer.StartSpan("pgvigil.long_running_query", SpanKind::kInternal);
    for (size_t i = 0; i < ScopedSpan::kMaxLinks + 3; ++i) s.AddLink(link);
  }
  auto spans = sink.all();
  REQUIRE(spans.size() == 1);
  REQUIRE(spans[0].links.size() == ScopedSpan::kMaxLinks);
  CHECK(spans[0].links[0].trace_id == link.trace_id);
  CHECK(spans[0].links[0].span_id == link.span_id);
}

TEST_CASE("sample ratio 0 drops ordinary traces but keeps errors and slow ones", "[tracing]") {
  CollectingSink sink;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  Tracer tracer({.sample_ratio = 0.0, .slow_threshold = 1s}, {&sink}, &metrics);

  {
    ScopedSpan root = tracer.StartSpan("ordinary", SpanKind::kInternal);
    CHECK(!root.context().sampled);
    ScopedSpan child = tracer.StartSpan("child", SpanKind::kClient, &root);
  }
  CHECK(sink.all().empty());
  CHECK(metrics.sampled_out().Value() == 2);

  {
    ScopedSpan root = tracer.StartSpan("failing probe", SpanKind::kInternal);
    ScopedSpan child = tracer.StartSpan("SELECT", SpanKind::kClient, &root);
    child.SetDbError("08006", "connection failure", "reset");
    child.End();
  }
  {
    // An observed long-running query: start in the past, so it is slow.
    auto start = std::chrono::system_clock::now() - 3s;
    ScopedSpan obs = tracer.StartSpan("pg.long_running_query", SpanKind::kInternal, nullptr, start);
    obs.SetAttribute("pgvigil.observed", true);
  }
  auto spans = sink.all();
  REQUIRE(spans.size() == 3);
  CHECK(FindSpan(spans, "failing probe") != nullptr);  // whole trace kept, not only the error
  CHECK(FindSpan(spans, "SELECT") != nullptr);
  const Span* obs = FindSpan(spans, "pg.long_running_query");
  REQUIRE(obs != nullptr);
  CHECK(obs->Duration() >= 3s);
  CHECK(metrics.recorded().Value() == 3);
}

TEST_CASE("sample ratio is honoured per trace", "[tracing]") {
  CollectingSink sink;
  Tracer tracer({.sample_ratio = 0.25}, {&sink});
  int kept_heads = 0;
  for (int i = 0; i < 4000; ++i) {
    ScopedSpan root = tracer.StartSpan("t", SpanKind::kInternal);
    ScopedSpan child = tracer.StartSpan("c", SpanKind::kInternal, &root);
    CHECK(child.context().sampled == root.context().sampled);
    if (root.context().sampled) ++kept_heads;
  }
  auto batches = sink.batches();
  CHECK(static_cast<int>(batches.size()) == kept_heads);
  for (const auto& b : batches) CHECK(b.size() == 2);
  CHECK(kept_heads > 800);
  CHECK(kept_heads < 1200);
}

TEST_CASE("late children follow the root's decision; traces are bounded", "[tracing]") {
  CollectingSink sink;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  Tracer tracer({.sample_ratio = 1.0, .max_spans_per_trace = 3}, {&sink}, &metrics);
  ScopedSpan late;
  {
    ScopedSpan root = tracer.StartSpan("root", SpanKind::kInternal);
    late = tracer.StartSpan("late", SpanKind::kInternal, &root);
    for (int i = 0; i < 5; ++i) tracer.StartSpan("child", SpanKind::kInternal, &root).End();
  }
  REQUIRE(sink.batches().size() == 1);
  CHECK(sink.batches()[0].size() == 4);  // 3 pending children + the root
  CHECK(metrics.dropped("trace_too_large").Value() == 2);
  late.End();
  REQUIRE(sink.batches().size() == 2);
  CHECK(sink.batches()[1][0].name == "late");

  ScopedSpan inert;
  inert.SetAttribute("x", 1).SetError("", "nothing");
  inert.End();
  CHECK(sink.batches().size() == 2);
}

TEST_CASE("spans of one trace may end on different threads", "[tracing]") {
  CollectingSink sink;
  Tracer tracer({}, {&sink});
  ScopedSpan root = tracer.StartSpan("root", SpanKind::kInternal);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) tracer.StartSpan("c", SpanKind::kInternal, &root).End();
    });
  }
  for (auto& th : threads) th.join();
  root.End();
  REQUIRE(sink.batches().size() == 1);
  CHECK(sink.batches()[0].size() == 201);
}
