#include "app.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>

#include "fleet/stats_leader.hpp"
#include "health/snapshot.hpp"
#include "http/server.hpp"
#include "neon/neon_watch.hpp"
#include "neon/wake_route.hpp"
#include "pgstats/db_stats_collector.hpp"
#include "runtime/runtime.hpp"
#include "sampling/query_routes.hpp"
#include "sampling/query_sampling.hpp"
#include "telemetry/metrics.hpp"
#include "tracing/otlp_exporter.hpp"
#include "tracing/otlp_json.hpp"
#include "tracing/span_buffer.hpp"
#include "tracing/trace_routes.hpp"
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

// Everything the agent runs, built in start order; destroyed in reverse.
struct Agent::Parts {
  explicit Parts(const Settings& s)
      : settings(s),
        metrics(kVersion),
        sampling(s.sampling, metrics.registry(), s.database.application_name),
        tracing_metrics(metrics.registry()),
        resource(DetectResource(s.tracing.service_name, kVersion)),
        span_buffer(static_cast<size_t>(s.tracing.buffer_spans), resource) {
    lifecycle.config_loaded = true;
    // Optional parts; their metric families are registered even when idle so dashboards and
    // alerts always find them.
    if (s.stats.enabled) {
      db_stats = std::make_unique<DbStatsCollector>(
          metrics.registry(), DbStatsOptions{s.stats.interval, s.sampling.statement_timeout,
                                             s.stats.intervals, s.stats.timeouts});
    }
    if (s.stats.enabled || s.sampling.enabled) {
      // A follower tries the lock every 1.5 collector intervals, at the probe tick nearest the
      // due time (fleet/stats_leader.hpp): hand-over within two intervals, and a try that
      // succeeds stands for that tick's probe, so it adds no statement of its own.
      const Millis interval = s.stats.enabled ? s.stats.interval : s.sampling.activity_interval;
      const Millis retry = interval * 3 / 2;
      leader = std::make_unique<StatsLeader>(s.stats.election, retry, metrics.registry());
    }
    std::vector<SpanSink*> sinks = {&span_buffer};
    if (s.tracing.otlp_endpoint) {
      exporter = std::make_unique<OtlpExporter>(OtlpExporterOptions::FromSettings(s.tracing),
                                                resource, &tracing_metrics);
      sinks.push_back(exporter.get());
    }
    TracerOptions tracer_options;
    tracer_options.sample_ratio = s.tracing.sample_ratio;
    tracer_options.slow_threshold = s.sampling.slow_threshold;
    tracer = std::make_unique<Tracer>(tracer_options, sinks, &tracing_metrics);

    NeonTarget neon_target = DescribeNeonTarget(s.neon, s.database.conn);
    if (neon_target.enabled) {
      neon = std::make_unique<NeonWatch>(s, neon_target, metrics.registry(),
                                         ProcessEnv(s.neon.api_key_env.c_str()));
      for (const auto& w : neon_target.warnings) LogWarn("neon", {{"hint", w}});
    } else {
      neon_metrics.emplace(metrics.registry());  // families present for dashboards
    }

    RuntimeParts parts;
    parts.sampling = s.sampling.enabled ? &sampling : nullptr;
    parts.db_stats = db_stats.get();
    parts.tracer = tracer.get();
    parts.exporter = exporter.get();
    parts.neon = neon.get();
    parts.leader = leader.get();
    scheduler = std::make_unique<Runtime>(s, snapshots, lifecycle, metrics, parts);
    http = std::make_unique<HttpServer>(s, snapshots, lifecycle, metrics);
    AddRoutes();
  }

  // Each feature brings its own endpoints; the server knows none of them.
  void AddRoutes() {
    for (auto& route : QueryRoutes(sampling)) http->AddRoute(std::move(route));
    for (auto& route : TraceRoutes(span_buffer)) http->AddRoute(std::move(route));
    http->AddRoute(WakeRoute([this] { scheduler->RequestWake(); }));
  }

  const Settings& settings;
  AgentMetrics metrics;
  SnapshotStore snapshots;
  Lifecycle lifecycle;
  QuerySampling sampling;
  std::unique_ptr<DbStatsCollector> db_stats;
  std::unique_ptr<StatsLeader> leader;
  TracingMetrics tracing_metrics;
  TraceResource resource;
  SpanBuffer span_buffer;
  std::unique_ptr<OtlpExporter> exporter;
  std::unique_ptr<Tracer> tracer;
  std::unique_ptr<NeonWatch> neon;
  std::optional<NeonMetrics> neon_metrics;
  std::unique_ptr<Runtime> scheduler;
  std::unique_ptr<HttpServer> http;
};

Agent::Agent(const Settings& settings) : parts_(std::make_unique<Parts>(settings)) {}

Agent::~Agent() { Shutdown(); }

bool Agent::Start(std::string* error) {
  if (!parts_->http->Start(error)) return false;
  parts_->lifecycle.listening = true;
  parts_->scheduler->Start();
  started_ = true;
  return true;
}

int Agent::port() const { return parts_->http->port(); }

void Agent::Shutdown() {
  if (!started_) return;
  started_ = false;
  // Readiness fails at once; then the scheduler stops (its DB call ends at its deadline) and
  // closes the pool; last, the HTTP server finishes in-flight requests.
  parts_->lifecycle.shutting_down = true;
  parts_->scheduler->Stop();
  if (parts_->exporter) parts_->exporter->Shutdown(parts_->settings.http.shutdown_timeout / 2);
  parts_->http->Stop();
}

int RunAgent(const Settings& settings) {
  BlockShutdownSignals();
  Agent agent(settings);
  std::string error;
  if (!agent.Start(&error)) {
    LogError("cannot start the HTTP listener", {{"error", error}});
    return 1;
  }
  LogInfo("pgvigil started",
          {{"version", kVersion},
           {"listen", settings.http.listen.ToString()},
           {"port", std::to_string(agent.port())},
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
  LogInfo("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  ShutdownWatchdog watchdog(settings.http.shutdown_timeout);
  agent.Shutdown();
  LogInfo("stopped");
  return 0;
}

}  // namespace pgvigil
