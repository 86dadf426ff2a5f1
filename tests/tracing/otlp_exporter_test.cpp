#include "tracing/otlp_exporter.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "config/endpoints.hpp"
#include "support/otlp_receiver.hpp"
#include "support/pg_server.hpp"
#include "tracing/tracer.hpp"

using namespace pgvigil;
using namespace pgvigil::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

Span MakeSpan(int i) {
  Span s;
  s.trace_id = NewTraceId();
  s.span_id = NewSpanId();
  s.name = "span-" + std::to_string(i);
  s.kind = SpanKind::kClient;
  s.end = std::chrono::system_clock::now();
  s.start = s.end - 5ms;
  s.attributes.Set("db.system.name", "postgresql");
  return s;
}

std::vector<Span> MakeSpans(int n) {
  std::vector<Span> v;
  for (int i = 0; i < n; ++i) v.push_back(MakeSpan(i));
  return v;
}

// Fast test defaults: short interval and backoff.
OtlpExporterOptions TestOptions(const std::string& endpoint) {
  OtlpExporterOptions o;
  auto ep = ParseOtlpEndpoint(endpoint);
  REQUIRE(ep);
  o.endpoint = *ep;
  o.export_interval = 50ms;
  o.export_timeout = 2s;
  o.backoff_initial = 20ms;
  o.backoff_max = 100ms;
  return o;
}

TraceResource Resource() {
  TraceResource r;
  r.service_name = "pgvigil-test";
  r.service_version = "0.0.1";
  r.service_instance_id = NewUuid();
  return r;
}

// Polls until `pred` holds; false after `timeout`.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

size_t SpanCount(const std::string& body) {
  json doc = json::parse(body);
  return doc["resourceSpans"][0]["scopeSpans"][0]["spans"].size();
}

}  // namespace

TEST_CASE("the status section of an exporter that is off", "[tracing]") {
  CHECK(json::parse(OtlpExporter::DisabledStatusJson())["enabled"] == false);
}

TEST_CASE("exporter posts OTLP JSON with configured headers and counts exports", "[tracing]") {
  OtlpReceiver receiver;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.headers = {{"X-Api-Key", "k-123"}, {"Content-Type", "text/plain"}};
  OtlpExporter exporter(opts, Resource(), &metrics);

  exporter.Consume(MakeSpans(3));
  REQUIRE(receiver.WaitForRequests(1, 3s));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 3; }, 2s));
  auto reqs = receiver.Requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].path == "/v1/traces");
  CHECK(reqs[0].Header("Content-Type") == "application/json");
  CHECK(reqs[0].Header("X-Api-Key") == "k-123");
  CHECK(reqs[0].Header("User-Agent").starts_with("pgvigil/"));
  CHECK(SpanCount(reqs[0].body) == 3);
  json doc = json::parse(reqs[0].body);
  CHECK(doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] == 3);

  auto st = exporter.Status();
  CHECK(st.exported == 3);
  CHECK(st.last_result == "ok");
  CHECK(st.consecutive_failures == 0);
  json health = json::parse(exporter.StatusJson());
  CHECK(health["endpoint"] == "http://127.0.0.1:" + std::to_string(receiver.port()) + "/v1/traces");
  CHECK(health["last_result"] == "ok");
  CHECK(health["exported_spans"] == 3);
  CHECK(health.dump().find("k-123") == std::string::npos);
  CHECK(metrics.export_duration().Collect().histogram.sample_count == 1);
}

TEST_CASE("exporter looks the collector's name up and keeps the name in Host", "[tracing][dns]") {
  OtlpReceiver receiver;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  // /etc/hosts may list ::1 first, where nothing listens: the exporter moves on to 127.0.0.1.
  const std::string host_port = "localhost:" + std::to_string(receiver.port());
  OtlpExporter exporter(TestOptions("http://" + host_port + "/v1/traces"), Resource(), &metrics);
  exporter.Consume(MakeSpans(2));
  REQUIRE(receiver.WaitForRequests(1, 3s));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 2; }, 2s));
  CHECK(receiver.Requests()[0].Header("Host") == host_port);
  CHECK(exporter.Status().failed_attempts == 0);
}

TEST_CASE("a collector name that does not resolve is a retried connection failure",
          "[tracing][dns]") {
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  OtlpExporter exporter(TestOptions("http://pgvigil-no-such-host.invalid:4318/v1/traces"),
                        Resource(), &metrics);
  exporter.Consume(MakeSpans(1));
  REQUIRE(Eventually([&] { return exporter.Status().failed_attempts >= 2; }, 5s));
  const auto st = exporter.Status();
  CHECK(st.last_result == "connection");
  CHECK_THAT(st.last_error, Catch::Contains("pgvigil-no-such-host.invalid") &&
                                Catch::Contains("does not resolve"));
}

TEST_CASE("exporter batches by size", "[tracing]") {
  OtlpReceiver receiver;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.export_interval = 10s;  // only a full batch may trigger a send
  opts.max_batch = 4;
  OtlpExporter exporter(opts, Resource(), &metrics);
  exporter.Consume(MakeSpans(9));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 8; }, 3s));
  auto reqs = receiver.Requests();
  REQUIRE(reqs.size() == 2);
  CHECK(SpanCount(reqs[0].body) == 4);
  CHECK(SpanCount(reqs[1].body) == 4);
  // The ninth goes out on shutdown.
  exporter.Shutdown(2s);
  CHECK(metrics.exported().Value() == 9);
}

TEST_CASE("429 is retried after Retry-After", "[tracing]") {
  OtlpReceiver receiver;
  receiver.Script({OtlpReply::kTooManyRequests});
  receiver.SetRetryAfterSeconds(1);
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  OtlpExporter exporter(TestOptions(receiver.Endpoint()), Resource(), &metrics);
  exporter.Consume(MakeSpans(2));
  REQUIRE(receiver.WaitForRequests(2, 4s));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 2; }, 2s));
  auto reqs = receiver.Requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1].at - reqs[0].at >= 950ms);
  CHECK(reqs[0].body == reqs[1].body);
  CHECK(metrics.export_errors("throttled").Value() == 1);
  CHECK(metrics.dropped("export_failed").Value() == 0);
}

TEST_CASE("503 and 502 are retried with backoff, then exported", "[tracing]") {
  OtlpReceiver receiver;
  receiver.Script({OtlpReply::kUnavailable, OtlpReply::kBadGateway, OtlpReply::kUnavailable});
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  OtlpExporter exporter(TestOptions(receiver.Endpoint()), Resource(), &metrics);
  exporter.Consume(MakeSpans(5));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 5; }, 5s));
  CHECK(receiver.RequestCount() == 4);
  CHECK(metrics.export_errors("unavailable").Value() == 3);
  auto st = exporter.Status();
  CHECK(st.failed_attempts == 3);
  CHECK(st.last_result == "ok");
}

TEST_CASE("retries are bounded per batch", "[tracing]") {
  OtlpReceiver receiver;
  receiver.SetDefaultReply(OtlpReply::kUnavailable);
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.max_retries = 2;
  OtlpExporter exporter(opts, Resource(), &metrics);
  exporter.Consume(MakeSpans(4));
  REQUIRE(Eventually([&] { return metrics.dropped("export_failed").Value() == 4; }, 5s));
  CHECK(receiver.RequestCount() == 3);
  json health = json::parse(exporter.StatusJson());
  CHECK(health["last_result"] == "unavailable");
  CHECK(health["last_error"].get<std::string>().starts_with("HTTP 503"));
  CHECK(health["consecutive_failures"] == 3);
  CHECK(health["dropped_spans"] == 4);
}

TEST_CASE("400 is not retried", "[tracing]") {
  OtlpReceiver receiver;
  receiver.SetDefaultReply(OtlpReply::kBadRequest);
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  OtlpExporter exporter(TestOptions(receiver.Endpoint()), Resource(), &metrics);
  exporter.Consume(MakeSpans(3));
  REQUIRE(receiver.WaitForRequests(1, 3s));
  REQUIRE(Eventually([&] { return metrics.dropped("rejected").Value() == 3; }, 2s));
  std::this_thread::sleep_for(300ms);  // several backoff periods: still nothing more
  CHECK(receiver.RequestCount() == 1);
  CHECK(metrics.export_errors("rejected").Value() == 1);
  CHECK(metrics.exported().Value() == 0);
}

TEST_CASE("partial success counts rejected spans", "[tracing]") {
  OtlpReceiver receiver;
  receiver.SetOkBody(R"({"partialSuccess":{"rejectedSpans":"1","errorMessage":"too old"}})");
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  OtlpExporter exporter(TestOptions(receiver.Endpoint()), Resource(), &metrics);
  exporter.Consume(MakeSpans(3));
  REQUIRE(Eventually([&] { return metrics.exported().Value() == 2; }, 3s));
  CHECK(metrics.dropped("rejected").Value() == 1);
}

TEST_CASE("a hanging collector times out and never blocks Enqueue", "[tracing]") {
  OtlpReceiver receiver;
  receiver.SetDefaultReply(OtlpReply::kHang);
  receiver.SetHangFor(5s);
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.export_timeout = 300ms;
  opts.max_retries = 0;
  opts.queue_spans = 1000;
  OtlpExporter exporter(opts, Resource(), &metrics);
  exporter.Consume(MakeSpans(1));
  REQUIRE(receiver.WaitForRequests(1, 3s));

  // While the export thread waits on the collector, enqueueing stays fast.
  auto span = MakeSpan(0);
  auto t0 = Clock::now();
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) accepted += exporter.Enqueue(span) ? 1 : 0;
  auto took = Clock::now() - t0;
  CHECK(took < 200ms);
  CHECK(accepted <= 1000);
  CHECK(accepted >= 900);

  REQUIRE(Eventually([&] { return metrics.export_errors("timeout").Value() >= 1; }, 3s));
  CHECK(exporter.Status().last_error.find("timed out") != std::string::npos);
  CHECK(metrics.dropped("queue_full").Value() == 5000 - accepted);
  CHECK(metrics.dropped("export_failed").Value() >= 1);

  // Shutdown is bounded even though every request hangs.
  auto s0 = Clock::now();
  exporter.Shutdown(400ms);
  CHECK(Clock::now() - s0 < 1500ms);
  // Every span is accounted for: none exported, each lost one counted under some reason.
  CHECK(metrics.exported().Value() == 0);
  CHECK(metrics.dropped("queue_full").Value() + metrics.dropped("export_failed").Value() +
            metrics.dropped("shutdown").Value() ==
        1 + 5000);
  CHECK(metrics.DroppedTotal() == 1 + 5000);
  CHECK(metrics.queue_length().Value() == 0);
}

TEST_CASE("the queue bound drops and counts; Shutdown drops what is left", "[tracing]") {
  OtlpReceiver receiver;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.export_interval = 60s;  // nothing leaves the queue by itself
  opts.max_batch = 1000;
  opts.queue_spans = 50;
  OtlpExporter exporter(opts, Resource(), &metrics);
  int accepted = 0;
  for (int i = 0; i < 200; ++i) accepted += exporter.Enqueue(MakeSpan(i)) ? 1 : 0;
  CHECK(accepted == 50);
  CHECK(metrics.dropped("queue_full").Value() == 150);
  CHECK(metrics.queue_length().Value() == 50);
  CHECK(exporter.Status().queue_length == 50);
  CHECK(receiver.RequestCount() == 0);

  exporter.Shutdown(0ms);
  CHECK(metrics.dropped("shutdown").Value() == 50);
  CHECK(!exporter.Enqueue(MakeSpan(0)));
  CHECK(metrics.dropped("shutdown").Value() == 51);
  CHECK(receiver.RequestCount() == 0);
}

TEST_CASE("Shutdown flushes the queue when the collector answers", "[tracing]") {
  OtlpReceiver receiver;
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions(receiver.Endpoint());
  opts.export_interval = 60s;
  opts.max_batch = 10;
  OtlpExporter exporter(opts, Resource(), &metrics);
  exporter.Consume(MakeSpans(25));
  auto t0 = Clock::now();
  exporter.Shutdown(2s);
  CHECK(Clock::now() - t0 < 2s);
  CHECK(metrics.exported().Value() == 25);
  CHECK(metrics.dropped("shutdown").Value() == 0);
}

TEST_CASE("a dead collector is retried briefly and counted as connection errors", "[tracing]") {
  const int port = FreeTcpPort();  // nothing listens here
  prometheus::Registry registry;
  TracingMetrics metrics(registry);
  auto opts = TestOptions("http://127.0.0.1:" + std::to_string(port) + "/v1/traces");
  opts.max_retries = 2;
  OtlpExporter exporter(opts, Resource(), &metrics);
  auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) exporter.Enqueue(MakeSpan(i));
  CHECK(Clock::now() - t0 < 200ms);
  REQUIRE(Eventually([&] { return metrics.dropped("export_failed").Value() == 1000; }, 5s));
  CHECK(metrics.export_errors("connection").Value() >= 3);
  CHECK(exporter.Status().last_result == "connection");
  auto s0 = Clock::now();
  exporter.Shutdown(300ms);
  CHECK(Clock::now() - s0 < 1s);
}

TEST_CASE("every span shape pgvigil makes goes out in one export", "[tracing][otlp_shapes]") {
  // The spans a failing probe and an activity sample with a linked long-running query produce,
  // built the way the scheduler builds them; tests/tracing/test_otlp_proto.sh decodes the export
  // with the official OTLP definitions and checks the semantic-convention rules on it.
  OtlpReceiver receiver;
  OtlpExporter exporter(TestOptions(receiver.Endpoint()), Resource());
  Tracer tracer({}, {&exporter});
  {
    ScopedSpan root = tracer.StartSpan("pgvigil.probe", SpanKind::kInternal);
    root.SetAttribute("pgvigil.db_state.before", "up");
    {
      ScopedSpan q =
          StartDbClientSpan(tracer, {"postgres", "SELECT", "SELECT ?", "127.0.0.1", 5432}, &root);
      q.SetDbError("57P01", "terminating connection due to administrator command",
                   "admin_shutdown");
    }
    root.SetError("57P01", "terminating connection due to administrator command");
    root.SetAttribute("pgvigil.error.kind", "admin_shutdown");
    root.SetAttribute("pgvigil.db_state.after", "down");
  }
  {
    ScopedSpan sampler = tracer.StartSpan("pgvigil.sample.activity", SpanKind::kInternal);
    ScopedSpan obs = tracer.StartSpan("pgvigil.long_running_query", SpanKind::kInternal, &sampler,
                                      std::chrono::system_clock::now() - 3s);
    obs.SetAttribute("pgvigil.observed", true)
        .SetAttribute("pgvigil.backend.pid", 4242)
        .SetAttribute("pgvigil.backend.user", "app")
        .SetAttribute("pgvigil.query.text", "SELECT pg_sleep(?)");
    obs.AddLink(SpanLink{NewTraceId(), NewSpanId(), 0x01, true, {}});
    obs.AddEvent("pgvigil.note", {}, std::chrono::system_clock::now());
    obs.End();
    sampler.SetOk();
  }
  REQUIRE(Eventually(
      [&] {
        size_t n = 0;
        for (const auto& r : receiver.Requests()) n += SpanCount(r.body);
        return n == 4;
      },
      3s));
}
