#include "app.hpp"

#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include "health/snapshot.hpp"
#include "http/server.hpp"
#include "neon_watch.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "sampling/query_sampling.hpp"
#include "scheduler.hpp"
#include "telemetry/metrics.hpp"
#include "tracing/otlp_exporter.hpp"
#include "tracing/otlp_json.hpp"
#include "tracing/span_buffer.hpp"
#include "tracing/tracer.hpp"
#include "tracing/tracing_metrics.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace pgvigil {

namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Kills the process if shutdown overruns its bound: a stuck shutdown must not outlive the
// grace period the orchestrator gives us.
class ShutdownWatchdog {
 public:
  explicit ShutdownWatchdog(Millis bound)
      : thread_([this, bound] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, bound, [this] { return done_; })) {
            LogError("shutdown took too long; exiting now",
                     {{"shutdown_timeout", FormatDuration(bound)}});
            _exit(1);
          }
        }) {}
  ~ShutdownWatchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int RunAgent(const Settings& settings) {
  BlockShutdownSignals();
  AgentMetrics metrics(kVersion);
  SnapshotStore snapshots;
  Lifecycle lifecycle;
  lifecycle.config_loaded = true;

  // Optional parts, in start order; their metric families are registered even when idle so
  // dashboards and alerts always find them.
  QuerySampling sampling(settings.sampling, metrics.registry(), settings.database.application_name);
  std::unique_ptr<DbStatsCollector> db_stats;
  if (settings.stats.enabled) {
    db_stats = std::make_unique<DbStatsCollector>(
        metrics.registry(),
        DbStatsOptions{settings.stats.interval, settings.sampling.statement_timeout});
  }
  TracingMetrics tracing_metrics(metrics.registry());
  const TraceResource resource = DetectResource(settings.tracing.service_name, kVersion);
  SpanBuffer span_buffer(static_cast<size_t>(settings.tracing.buffer_spans), resource);
  std::unique_ptr<OtlpExporter> exporter;
  std::vector<SpanSink*> sinks = {&span_buffer};
  if (!settings.tracing.otlp_endpoint.empty()) {
    exporter = std::make_unique<OtlpExporter>(OtlpExporterOptions::FromSettings(settings.tracing),
                                              resource, &tracing_metrics);
    sinks.push_back(exporter.get());
  }
  TracerOptions tracer_options;
  tracer_options.sample_ratio = settings.tracing.sample_ratio;
  tracer_options.slow_threshold = settings.sampling.slow_threshold;
  Tracer tracer(tracer_options, sinks, &tracing_metrics);

  NeonTarget neon_target = DescribeNeonTarget(settings.neon, settings.database.conn);
  std::unique_ptr<NeonWatch> neon;
  std::optional<NeonMetrics> neon_metrics;  // families present for dashboards when not on Neon
  if (neon_target.enabled) {
    neon = std::make_unique<NeonWatch>(settings, neon_target, metrics.registry(),
                                       ProcessEnv(settings.neon.api_key_env.c_str()));
    for (const auto& w : neon_target.warnings) LogWarn("neon", {{"hint", w}});
  } else {
    neon_metrics.emplace(metrics.registry());
  }

  SchedulerParts parts;
  parts.sampling = settings.sampling.enabled ? &sampling : nullptr;
  parts.db_stats = db_stats.get();
  parts.tracer = &tracer;
  parts.exporter = exporter.get();
  parts.neon = neon.get();
  Scheduler scheduler(settings, snapshots, lifecycle, metrics, parts);
  HttpServer http(settings, snapshots, lifecycle, metrics);
  http.AddRoute({"GET", "/queries", [&sampling](const httplib::Request&, httplib::Response& res) {
                   res.set_header("Cache-Control", "no-store");
                   res.set_content(sampling.QueriesJson(), "application/json");
                 }});
  http.AddRoute(
      {"GET", "/traces", [&span_buffer](const httplib::Request& req, httplib::Response& res) {
         std::string err;
         auto q = ParseTracesQuery(req.params, &err);
         if (!q) {
           res.status = 400;
           res.set_content(err + "\n", "text/plain");
           return;
         }
         res.set_header("Cache-Control", "no-store");
         res.set_content(TracesJson(span_buffer, q->min_duration, q->errors_only,
                                    std::min(q->limit, span_buffer.capacity())),
                         "application/json");
       }});
  http.AddRoute({"POST", "/wake", [&scheduler](const httplib::Request&, httplib::Response& res) {
                   scheduler.RequestWake();
                   res.status = 202;
                   res.set_content("pgvigil will look at the database now\n", "text/plain");
                 }});
  std::string error;
  if (!http.Start(&error)) {
    LogError("cannot start the HTTP listener", {{"error", error}});
    return 1;
  }
  lifecycle.listening = true;
  scheduler.Start();
  LogInfo("pgvigil started",
          {{"version", kVersion},
           {"listen", settings.http.listen},
           {"port", std::to_string(http.port())},
           {"target", settings.database.conn.Redacted()},
           {"config", settings.config_path.empty() ? "(defaults)" : settings.config_path}});

  sigset_t set = ShutdownSignals();
  int sig = 0;
  while (true) {
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      LogInfo("SIGHUP ignored; restart pgvigil to reload its configuration");
      continue;
    }
    break;
  }

  // Readiness fails at once; then the scheduler stops (its DB call ends at its deadline) and
  // closes the pool; last, the HTTP server finishes in-flight requests.
  lifecycle.shutting_down = true;
  LogInfo("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  ShutdownWatchdog watchdog(settings.http.shutdown_timeout);
  scheduler.Stop();
  if (exporter) exporter->Shutdown(settings.http.shutdown_timeout / 2);
  http.Stop();
  LogInfo("stopped");
  return 0;
}

}  // namespace pgvigil
