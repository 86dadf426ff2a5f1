// The scheduler with simulated time and a fake probe outcome source (no libpq, no server): probe
// success and failure, backoff, 57P01 under both Neon policies, cold start and wake, the windows
// of the other jobs and the catch-all. The live tests drive the real pool against real servers.
#include "runtime/scheduler.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <deque>
#include <stdexcept>

#include "neon/neon_watch.hpp"
#include "runtime/probe_job.hpp"
#include "runtime/probe_source.hpp"
#include "util/clock.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using SteadyPoint = std::chrono::steady_clock::time_point;

enum class Db { kOk, kRefused, kTerminated };

// What the probe sees, one scripted outcome per probe (kOk once the script runs out). A refused
// connect makes the "pool" back off for `backoff`; a 57P01 ends the session.
class FakeProbeSource final : public ProbeSource {
 public:
  explicit FakeProbeSource(ManualClock& clock) : clock_(clock) {}

  SteadyPoint NextConnectAllowed() const override {
    return session_ ? clock_.Steady() : std::max(clock_.Steady(), backoff_until_);
  }
  ProbeAttempt Probe(std::optional<Millis> connect_timeout, ScopedSpan&,
                     const TickTraffic* traffic) override {
    probe_times.push_back(clock_.Steady());
    connect_timeouts.push_back(connect_timeout);
    ProbeAttempt a;
    // As PoolProbeSource: a job's statement that met 57P01 is the probe's result; a job's
    // success stands for the probe statement; else the scripted probe statement.
    if (traffic && tally.terminated > traffic->since.terminated) {
      a.connected = true;
      a.result.error = tally.last_terminated;
      a.result.at = clock_.Wall();
      return a;
    }
    if (traffic && traffic->jobs_ok && session_ && tally.ok > traffic->since.ok &&
        tally.failed == traffic->since.failed) {
      a.connected = true;
      a.result.ok = true;
      a.result.by_traffic = true;
      a.result.at = tally.last_ok_at;
      return a;
    }
    const Db next = script.empty() ? Db::kOk : script.front();
    if (!script.empty()) script.pop_front();
    if (next == Db::kRefused) {
      session_ = false;
      clock_.Advance(1ms);
      backoff_until_ = clock_.Steady() + backoff;
      a.result.error = DbError{ErrorKind::kRefused, "", "connection refused"};
      a.result.at = clock_.Wall();
      return a;
    }
    a.connected = true;
    a.result.new_connection = !session_;
    if (!session_) {
      ++connects;
      clock_.Advance(connect_took);
      a.result.connect_duration = connect_took;
      session_ = true;
    }
    ++selects;
    clock_.Advance(1ms);
    a.result.latency = 1ms;
    a.result.at = clock_.Wall();
    if (next == Db::kTerminated) {
      Statement(next);
      a.result.error = tally.last_terminated;
      return a;
    }
    Statement(Db::kOk);
    a.result.ok = true;
    return a;
  }
  StatementTally Statements() const override { return tally; }
  // One statement on the probe's pool (the probe's or a job's) with this outcome.
  void Statement(Db outcome) {
    if (outcome == Db::kOk) {
      ++tally.ok;
      tally.last_ok_at = clock_.Wall();
      return;
    }
    ++tally.failed;
    if (outcome == Db::kTerminated) {
      session_ = false;
      ++tally.terminated;
      tally.last_terminated = DbError{ErrorKind::kAdminShutdown, "57P01",
                                      "terminating connection due to administrator command"};
    }
  }
  Connection* session() override { return nullptr; }
  void EndSession() override {}
  void CloseAll(const std::string&) override {
    session_ = false;
    ++closes;
  }
  OwnUsage OwnUsageNow() const override { return {}; }

  std::deque<Db> script;
  std::chrono::milliseconds backoff = 3s;
  std::chrono::milliseconds connect_took = 5ms;
  std::vector<SteadyPoint> probe_times;  // every probe, by traffic or not
  std::vector<std::optional<Millis>> connect_timeouts;
  int connects = 0, closes = 0;
  int selects = 0;  // probe statements sent
  StatementTally tally;

 private:
  ManualClock& clock_;
  bool session_ = false;
  SteadyPoint backoff_until_{};
};

// A job that takes `takes` of simulated time, cut at the window's end like a bounded statement.
class FakeJob final : public Job {
 public:
  FakeJob(ManualClock& clock, std::string name, Millis every, Millis takes)
      : clock_(clock), name_(std::move(name)), every_(every), takes_(takes) {}
  std::string_view name() const override { return name_; }
  std::chrono::milliseconds interval() const override { return every_; }
  JobOutcome Run(JobContext& ctx) override {
    ++runs;
    windows.push_back(ctx.window_end);
    starts.push_back(clock_.Steady());
    if (throws) throw std::runtime_error("boom");
    const auto end = ctx.Bound(clock_.Steady() + takes_);
    const bool cut = end < clock_.Steady() + takes_;
    clock_.AdvanceTo(end);
    if (cut) ++cut_runs;
    if (pool) pool->Statement(cut ? Db::kRefused : statement);
    if (pool && statement != Db::kOk) {
      ++failed_runs;
      return JobOutcome::Failed();
    }
    return cut ? JobOutcome::Failed() : JobOutcome::Done();
  }
  int runs = 0, cut_runs = 0;
  bool throws = false;
  std::vector<SteadyPoint> windows, starts;
  int failures() const { return failed_runs; }
  int failed_runs = 0;
  FakeProbeSource* pool = nullptr;  // set: its statement runs on the probe's pool
  Db statement = Db::kOk;           // that statement's outcome (kRefused: an error reply)

 private:
  ManualClock& clock_;
  std::string name_;
  Millis every_, takes_;
};

Settings TestSettings(std::optional<IdlePolicy> neon = std::nullopt) {
  Settings s;
  s.probe.interval = 1s;
  s.probe.failure_threshold = 2;
  s.database.connect_timeout = 2s;
  if (neon) {
    s.neon.idle_policy = *neon;
    s.neon.suspend_after = 60s;
    s.neon.wake_timeout = 15s;
  }
  return s;
}

// A scheduler and everything it needs, driven turn by turn without a thread.
struct Rig {
  explicit Rig(std::optional<IdlePolicy> neon_policy = std::nullopt)
      : settings(TestSettings(neon_policy)), source(clock), metrics("test") {
    if (neon_policy) {
      NeonTarget target;
      target.enabled = true;
      target.endpoint_id = "ep-test-123";
      neon = std::make_unique<NeonWatch>(settings, target, metrics.registry(), std::nullopt);
    }
    probe = std::make_unique<ProbeJob>(settings, source, metrics, neon.get(), nullptr);
    probe->SetLastWindow([this](Connection*) { ++last_windows; });
  }
  void Build(std::vector<Job*> jobs = {}) {
    SchedulerHooks hooks;
    hooks.on_probe_target = on_target;
    hooks.may_run_jobs = may_run_jobs;
    scheduler = std::make_unique<Scheduler>(clock, lifecycle, metrics, *probe, std::move(jobs),
                                            std::move(hooks));
  }
  // Turns the loop at each wake-up until `d` of simulated time has passed.
  void RunFor(std::chrono::steady_clock::duration d) {
    const auto end = clock.Steady() + d;
    while (clock.Steady() < end) {
      clock.AdvanceTo(std::min(scheduler->NextWake(), end));
      if (clock.Steady() >= end) break;
      scheduler->Turn(false);
    }
  }
  void Wake() { scheduler->Turn(true); }
  DbState state() const { return probe->health().state(); }

  ManualClock clock;
  Settings settings;
  FakeProbeSource source;
  AgentMetrics metrics;
  Lifecycle lifecycle;
  std::unique_ptr<NeonWatch> neon;
  std::unique_ptr<ProbeJob> probe;
  std::unique_ptr<Scheduler> scheduler;
  int last_windows = 0;
  std::function<bool(const Job&)> on_target;  // unset: no job shares the probe's pool
  std::function<bool(const JobContext&)> may_run_jobs;
};

std::chrono::steady_clock::duration MaxGap(const std::vector<SteadyPoint>& t) {
  std::chrono::steady_clock::duration gap{0};
  for (size_t i = 1; i < t.size(); ++i) gap = std::max(gap, t[i] - t[i - 1]);
  return gap;
}

TEST_CASE("probes keep their interval and feed the health model", "[runtime][unit]") {
  Rig rig;
  rig.Build();
  CHECK(rig.state() == DbState::kStarting);
  rig.RunFor(10s + 500ms);
  CHECK(rig.state() == DbState::kUp);
  REQUIRE(rig.source.probe_times.size() >= 10);
  CHECK(MaxGap(rig.source.probe_times) <= 1s + 10ms);
  CHECK(rig.source.connects == 1);  // the session is kept
}

TEST_CASE("failures: down after the threshold, backoff respected, POST /wake bypasses it",
          "[runtime][unit]") {
  Rig rig;
  rig.Build();
  rig.RunFor(2s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  rig.source.script = {Db::kRefused, Db::kRefused, Db::kRefused};
  rig.source.CloseAll("test");  // the server went away: the next probe connects
  const size_t before = rig.source.probe_times.size();
  rig.RunFor(1s);  // t = 3.5 s; the probe at 3.0 s was refused: backoff until 6.0 s
  CHECK(rig.source.probe_times.size() == before + 1);
  CHECK(rig.state() == DbState::kDegraded);  // one failure is below the threshold
  // The pool backs off 3 s: no probe before that, however short the interval.
  rig.RunFor(2s);
  CHECK(rig.source.probe_times.size() == before + 1);
  rig.RunFor(1s);
  CHECK(rig.source.probe_times.size() == before + 2);
  CHECK(rig.state() == DbState::kDown);
  // POST /wake looks at once, backoff or not.
  rig.Wake();
  CHECK(rig.source.probe_times.size() == before + 3);
  // Then the server is back: usable again after the backoff.
  rig.RunFor(3s + 100ms);
  CHECK(rig.source.probe_times.size() == before + 4);
  CHECK(DbStateUsable(rig.state()));
  CHECK(rig.probe->health().consecutive_failures() == 0);
}

TEST_CASE("jobs run in the window after a probe and never delay the next one", "[runtime][unit]") {
  Rig rig;
  FakeJob quick(rig.clock, "activity", 1s, 50ms);
  FakeJob slow(rig.clock, "db_stats", 5s, 2s);  // longer than any window: cut at its end
  FakeJob big(rig.clock, "statements", 1s, 700ms);
  rig.Build({&quick, &slow, &big});
  rig.RunFor(30s);
  // The probe keeps its cadence: a job is bounded by the window (next probe due - margin).
  CHECK(MaxGap(rig.source.probe_times) <= 1s + 10ms);
  for (auto* job : {&quick, &slow, &big}) {
    CHECK(job->runs > 0);
    for (auto w : job->windows) CHECK(w < SteadyPoint::max());
  }
  CHECK(slow.cut_runs > 0);
  // The 700 ms job does not fit behind the slow one's cut window: it waits for the next window
  // (and still runs regularly).
  const auto jobs = rig.scheduler->JobsStatus();
  CHECK(jobs["statements"]["deferred_windows"].get<int>() > 0);
  CHECK(big.runs >= 15);
  CHECK(quick.runs >= 25);
}

TEST_CASE("a job that throws is counted and the loop goes on", "[runtime][unit]") {
  Rig rig;
  FakeJob bad(rig.clock, "activity", 1s, 10ms);
  bad.throws = true;
  rig.Build({&bad});
  rig.RunFor(5s + 500ms);
  CHECK(bad.runs >= 5);
  const auto errors = rig.scheduler->internal_errors();
  CHECK(errors.by_component.at("activity") == static_cast<std::uint64_t>(bad.runs));
  CHECK(errors.last == "activity: boom");
  CHECK(rig.state() == DbState::kUp);
  CHECK(rig.metrics.Serialize().find("pgvigil_internal_errors_total{component=\"activity\"} " +
                                     std::to_string(bad.runs)) != std::string::npos);
}

TEST_CASE("jobs wait while the database is down", "[runtime][unit]") {
  Rig rig;
  FakeJob job(rig.clock, "activity", 1s, 10ms);
  rig.Build({&job});
  rig.RunFor(3s + 500ms);
  const int before = job.runs;
  rig.source.backoff = 500ms;
  rig.source.script.assign(8, Db::kRefused);
  rig.source.CloseAll("test");
  rig.RunFor(4s);
  CHECK(rig.state() == DbState::kDown);
  CHECK(job.runs == before);
}

TEST_CASE("keep_awake: 57P01 is the compute restarting, not a failure", "[runtime][neon][unit]") {
  Rig rig(IdlePolicy::kKeepAwake);
  rig.Build();
  rig.RunFor(3s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  rig.source.script = {Db::kTerminated};
  const size_t before = rig.source.probe_times.size();
  rig.RunFor(2s);
  REQUIRE(rig.source.probe_times.size() >= before + 2);
  // Reconnected at the next probe, measured as a cold start, never down.
  CHECK(rig.source.probe_times[before + 1] - rig.source.probe_times[before] <= 1s + 10ms);
  CHECK(rig.source.connects == 2);
  CHECK(rig.source.closes >= 1);
  CHECK(rig.state() == DbState::kUp);
  CHECK(rig.probe->health().consecutive_failures() == 0);
  const auto m = rig.metrics.Serialize();
  CHECK(m.find("pgvigil_neon_sessions_terminated_total 1") != std::string::npos);
  CHECK(m.find("pgvigil_probes_total{outcome=\"admin_shutdown\"} 1") != std::string::npos);
}

TEST_CASE("allow_suspend: 57P01 means asleep; probing stops until POST /wake, then a cold start",
          "[runtime][neon][unit]") {
  Rig rig(IdlePolicy::kAllowSuspend);
  FakeJob job(rig.clock, "statements", 1s, 10ms);
  rig.Build({&job});
  rig.RunFor(3s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  rig.source.script = {Db::kTerminated};
  rig.RunFor(1s);
  CHECK(rig.state() == DbState::kIdle);  // no API: idle right away, healthy
  CHECK(rig.source.closes >= 1);
  const size_t probes = rig.source.probe_times.size();
  const int runs = job.runs;
  rig.RunFor(10min);  // never wakes the compute by itself
  CHECK(rig.source.probe_times.size() == probes);
  CHECK(job.runs == runs);
  CHECK(rig.probe->health().consecutive_failures() == 0);
  // POST /wake: waking, a connect under neon.wake_timeout; two refused connects within it are
  // not failures; the backoff paces the retries; then up with a cold start.
  rig.source.backoff = 500ms;
  rig.source.script = {Db::kRefused, Db::kRefused};
  rig.Wake();
  CHECK(rig.state() == DbState::kWaking);
  REQUIRE(rig.source.connect_timeouts.back());
  CHECK(*rig.source.connect_timeouts.back() == 15s);
  rig.RunFor(1s + 500ms);
  CHECK(rig.state() == DbState::kWaking);
  CHECK(rig.source.probe_times.size() == probes + 2);
  rig.RunFor(1s);
  CHECK(rig.state() == DbState::kUp);
  CHECK(rig.probe->health().consecutive_failures() == 0);
  CHECK(rig.source.probe_times.size() == probes + 3);
  CHECK(rig.metrics.Serialize().find("pgvigil_neon_wakes_total{by=\"pgvigil\"} 1") !=
        std::string::npos);
  rig.RunFor(2s);
  CHECK(job.runs > runs);
}

TEST_CASE("allow_suspend: quiet for suspend_after lets the compute sleep, last window first",
          "[runtime][neon][unit]") {
  Rig rig(IdlePolicy::kAllowSuspend);
  rig.Build();
  rig.RunFor(59s);
  CHECK(rig.state() == DbState::kUp);
  CHECK(rig.last_windows == 0);
  rig.RunFor(3s);
  CHECK(rig.state() == DbState::kIdle);
  CHECK(rig.last_windows == 1);  // pg_stat_statements sampled before the pool closed
  CHECK(rig.source.closes == 1);
  const size_t probes = rig.source.probe_times.size();
  rig.RunFor(5min);
  CHECK(rig.source.probe_times.size() == probes);
}

// ---- by traffic (probe.reuse_traffic): a job's statement on the probe's pool stands for it ----

bool AllJobs(const Job&) { return true; }

double Metric(const AgentMetrics& m, const std::string& series) {
  const std::string text = m.Serialize();
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST_CASE("by traffic: a due job's success stands for SELECT 1 and health stays up",
          "[runtime][unit][traffic]") {
  Rig rig;
  rig.on_target = AllJobs;
  FakeJob job(rig.clock, "activity", 2s, 5ms);
  job.pool = &rig.source;
  rig.Build({&job});
  rig.RunFor(20s + 500ms);
  CHECK(rig.state() == DbState::kUp);
  const auto probes = static_cast<int>(rig.source.probe_times.size());
  const int by_traffic = probes - rig.source.selects;
  CHECK(probes >= 20);
  // Every other tick has the job due: about half the probes sent no statement.
  CHECK(by_traffic >= 8);
  CHECK(rig.source.selects >= 8);
  CHECK(job.runs >= 9);
  CHECK(Metric(rig.metrics, "pgvigil_probes_by_traffic_total") == by_traffic);
  CHECK(Metric(rig.metrics, "pgvigil_probes_total{outcome=\"ok\"}") == probes);
  // The latency histogram keeps real probe statements only.
  CHECK(Metric(rig.metrics, "pgvigil_probe_duration_seconds_count") == rig.source.selects);
  // The probe keeps its cadence: a tick waits for one cheap job at most.
  CHECK(MaxGap(rig.source.probe_times) <= 1s + 10ms);
  // A job ahead of the probe is bounded by now + probe.timeout (2 s), not by the window.
  int ahead = 0;
  for (size_t i = 0; i < job.windows.size(); ++i) ahead += job.windows[i] - job.starts[i] == 2s;
  CHECK(ahead == by_traffic);
  REQUIRE(rig.probe->health().last());
  CHECK(rig.probe->health().last()->latency == 1ms);  // the last measured latency stands
}

TEST_CASE("by traffic: a failing job falls back to the probe statement, which decides",
          "[runtime][unit][traffic]") {
  Rig rig;
  rig.on_target = AllJobs;
  FakeJob job(rig.clock, "activity", 1s, 5ms);
  job.pool = &rig.source;
  job.statement = Db::kRefused;  // an error reply: the job fails
  rig.Build({&job});
  rig.RunFor(10s + 500ms);
  CHECK(rig.state() == DbState::kUp);  // the probe statements succeed
  CHECK(rig.source.selects == static_cast<int>(rig.source.probe_times.size()));
  CHECK(job.failures() > 0);
  // The server goes away: the job fails first, the probe statement finds it: down after the
  // threshold (2), as without jobs.
  rig.source.backoff = 500ms;
  rig.source.script.assign(6, Db::kRefused);
  rig.source.CloseAll("test");
  rig.RunFor(2s + 100ms);
  CHECK(rig.state() == DbState::kDown);
}

TEST_CASE("by traffic: no job due, reuse off, or jobs on another pool: SELECT 1 every tick",
          "[runtime][unit][traffic]") {
  SECTION("no job due") {
    Rig rig;
    rig.on_target = AllJobs;
    FakeJob job(rig.clock, "db_stats", 5s, 5ms);
    job.pool = &rig.source;
    rig.Build({&job});
    rig.RunFor(20s + 500ms);
    const int by_traffic = static_cast<int>(rig.source.probe_times.size()) - rig.source.selects;
    CHECK(by_traffic >= 2);
    CHECK(by_traffic < job.runs);  // only ticks with the job due, never the others
  }
  SECTION("probe.reuse_traffic = false") {
    Rig rig;
    rig.settings.probe.reuse_traffic = false;
    rig.on_target = AllJobs;
    FakeJob job(rig.clock, "activity", 1s, 5ms);
    job.pool = &rig.source;
    rig.Build({&job});
    rig.RunFor(10s + 500ms);
    CHECK(rig.source.selects == static_cast<int>(rig.source.probe_times.size()));
    CHECK(job.runs >= 9);
  }
  SECTION("a job on another pool (neon.sampling_url) does not count") {
    Rig rig;
    rig.on_target = [](const Job& j) { return j.name() != "statements"; };
    FakeJob job(rig.clock, "statements", 1s, 5ms);
    rig.Build({&job});
    rig.RunFor(10s + 500ms);
    CHECK(rig.source.selects == static_cast<int>(rig.source.probe_times.size()));
    CHECK(job.runs >= 9);  // still in the window after each probe
  }
  SECTION("a job longer than the budget runs after the probe") {
    Rig rig;
    rig.on_target = AllJobs;
    FakeJob job(rig.clock, "statements", 1s, 60ms);
    job.pool = &rig.source;
    rig.Build({&job});
    rig.RunFor(10s + 500ms);
    // Its first run (duration unknown) may go first; then never again.
    CHECK(rig.source.selects >= static_cast<int>(rig.source.probe_times.size()) - 1);
  }
  SECTION("fleet follower: the gate says no, asked once per tick") {
    Rig rig;
    rig.on_target = AllJobs;
    int asked = 0;
    rig.may_run_jobs = [&](const JobContext&) {
      ++asked;
      return false;
    };
    FakeJob job(rig.clock, "db_stats", 1s, 5ms);
    job.pool = &rig.source;
    rig.Build({&job});
    rig.RunFor(10s + 500ms);
    CHECK(rig.source.selects == static_cast<int>(rig.source.probe_times.size()));
    CHECK(job.runs == 0);
    CHECK(asked >= 1);
    CHECK(asked <= static_cast<int>(rig.source.probe_times.size()));
  }
}

TEST_CASE("by traffic: 57P01 met by a job is the probe's (keep_awake: not a failure)",
          "[runtime][neon][unit][traffic]") {
  Rig rig(IdlePolicy::kKeepAwake);
  rig.on_target = AllJobs;
  FakeJob job(rig.clock, "activity", 1s, 5ms);
  job.pool = &rig.source;
  rig.Build({&job});
  rig.RunFor(3s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  job.statement = Db::kTerminated;
  rig.RunFor(1s);
  job.statement = Db::kOk;
  rig.RunFor(2s);
  CHECK(rig.source.connects == 2);  // reconnected by the probe, measured as a cold start
  CHECK(rig.state() == DbState::kUp);
  CHECK(rig.probe->health().consecutive_failures() == 0);
  const auto m = rig.metrics.Serialize();
  CHECK(m.find("pgvigil_neon_sessions_terminated_total 1") != std::string::npos);
  CHECK(m.find("pgvigil_probes_total{outcome=\"admin_shutdown\"} 1") != std::string::npos);
}

TEST_CASE("by traffic: 57P01 met by a job lets the compute sleep (allow_suspend), no reconnect",
          "[runtime][neon][unit][traffic]") {
  Rig rig(IdlePolicy::kAllowSuspend);
  rig.on_target = AllJobs;
  FakeJob job(rig.clock, "activity", 1s, 5ms);
  job.pool = &rig.source;
  rig.Build({&job});
  rig.RunFor(3s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  job.statement = Db::kTerminated;
  rig.RunFor(1s);
  CHECK(rig.state() == DbState::kIdle);
  const size_t probes = rig.source.probe_times.size();
  const int runs = job.runs;
  rig.RunFor(10min);  // never wakes the compute by itself: no probe, no job, no connect
  CHECK(rig.source.probe_times.size() == probes);
  CHECK(job.runs == runs);
  CHECK(rig.source.connects == 1);
  CHECK(rig.probe->health().consecutive_failures() == 0);
  // POST /wake: the probe statement first (no job ahead of it), then jobs again.
  job.statement = Db::kOk;
  const int selects = rig.source.selects;
  rig.Wake();
  CHECK(rig.source.selects == selects + 1);
  rig.RunFor(3s);
  CHECK(rig.state() == DbState::kUp);
  CHECK(job.runs > runs);
}

// ---- by traffic: a fleet follower's election retry (its gate statement) stands for the probe ----

// A stats follower's gate (hooks.may_run_jobs) as Runtime/StatsLeader make it: never lets the
// jobs run; when its retry is due, one statement on the probe's pool (taking `takes`, cut at
// the context's window end like a bounded statement) with `outcome`.
struct Follower {
  Follower(Rig& r, std::chrono::milliseconds every) : rig(r), retry(every) {}
  bool operator()(const JobContext& ctx) {
    ++asked;
    if (rig.clock.Steady() < next_try) return false;
    next_try = rig.clock.Steady() + retry;
    ++tries;
    try_ticks.push_back(rig.clock.Steady());
    ahead.push_back(ctx.window_end < SteadyPoint::max() &&
                    ctx.window_end - ctx.started == rig.settings.probe.timeout);
    const auto end = ctx.Bound(rig.clock.Steady() + takes);
    const bool cut = end < rig.clock.Steady() + takes;
    rig.clock.AdvanceTo(end);
    rig.source.Statement(cut ? Db::kRefused : outcome);
    return false;
  }
  Rig& rig;
  std::chrono::milliseconds retry;
  std::chrono::milliseconds takes = 2ms;
  Db outcome = Db::kOk;
  SteadyPoint next_try{};
  int asked = 0, tries = 0;
  std::vector<SteadyPoint> try_ticks;
  std::vector<bool> ahead;  // each try bounded by now + probe.timeout (ahead of the probe)
};

TEST_CASE("by traffic: a stats follower's lock try stands for SELECT 1 at its tick",
          "[runtime][unit][traffic][fleet]") {
  Rig rig;
  rig.on_target = AllJobs;
  Follower follower(rig, 3s);
  rig.may_run_jobs = [&](const JobContext& ctx) { return follower(ctx); };
  FakeJob job(rig.clock, "db_stats", 1s, 5ms);  // due at every tick, never allowed to run
  job.pool = &rig.source;
  rig.Build({&job});
  rig.RunFor(30s + 500ms);
  CHECK(rig.state() == DbState::kUp);
  CHECK(job.runs == 0);
  const auto probes = static_cast<int>(rig.source.probe_times.size());
  INFO("probes " << probes << ", SELECT 1 " << rig.source.selects << ", tries " << follower.tries);
  CHECK(follower.tries >= 9);
  // Each try ran ahead of the probe, bounded by probe.timeout, but the very first: before the
  // first probe the database is not known to be ready, so the gate waits for the window.
  const auto ahead = std::count(follower.ahead.begin(), follower.ahead.end(), true);
  CHECK(ahead == follower.tries - 1);
  CHECK_FALSE(follower.ahead.front());
  // Every try ahead stood for its tick's probe: no SELECT 1 there, counted as by traffic.
  CHECK(rig.source.selects + ahead == probes);
  CHECK(Metric(rig.metrics, "pgvigil_probes_by_traffic_total") == ahead);
  CHECK(Metric(rig.metrics, "pgvigil_probes_total{outcome=\"ok\"}") == probes);
  CHECK(Metric(rig.metrics, "pgvigil_probe_duration_seconds_count") == rig.source.selects);
  CHECK(MaxGap(rig.source.probe_times) <= 1s + 10ms);  // the probe keeps its cadence
  // The gate is asked once per tick, not again in the window after the probe.
  CHECK(follower.asked <= probes);

  // POST /wake probes first: the gate, asked after it, does not stand for it.
  const int selects = rig.source.selects;
  follower.next_try = {};
  rig.Wake();
  CHECK(rig.source.selects == selects + 1);
}

TEST_CASE("by traffic: a follower's failed lock try falls back to SELECT 1",
          "[runtime][unit][traffic][fleet]") {
  Rig rig;
  rig.on_target = AllJobs;
  Follower follower(rig, 1s);       // a try at every tick
  follower.outcome = Db::kRefused;  // an error reply
  rig.may_run_jobs = [&](const JobContext& ctx) { return follower(ctx); };
  FakeJob job(rig.clock, "db_stats", 1s, 5ms);
  job.pool = &rig.source;
  rig.Build({&job});
  rig.RunFor(10s + 500ms);
  CHECK(follower.tries >= 9);
  CHECK(rig.source.selects == static_cast<int>(rig.source.probe_times.size()));
  CHECK(Metric(rig.metrics, "pgvigil_probes_by_traffic_total") == 0);
  CHECK(rig.state() == DbState::kUp);  // the probe statements succeed
}

// The time from the server freezing (every statement hangs to its deadline, connects refused
// after their timeout) to `down`, with a follower trying the lock at every tick or without one.
std::chrono::steady_clock::duration TimeToDown(bool follower_tries) {
  Rig rig;
  rig.settings.probe.timeout = 500ms;
  Follower follower(rig, 1s);
  bool frozen = false;
  if (follower_tries) {
    rig.on_target = AllJobs;
    rig.may_run_jobs = [&](const JobContext& ctx) {
      follower.takes = frozen ? 10s : 2ms;  // frozen: the try hangs until its bound
      return follower(ctx);
    };
  }
  FakeJob job(rig.clock, "db_stats", 1s, 5ms);
  rig.Build({&job});
  rig.RunFor(5s + 500ms);
  REQUIRE(rig.state() == DbState::kUp);
  const auto froze_at = rig.clock.Steady();
  frozen = true;
  rig.source.backoff = 500ms;
  rig.source.script.assign(10, Db::kRefused);  // the probe statement finds it too
  rig.source.CloseAll("frozen");
  while (rig.state() != DbState::kDown && rig.clock.Steady() - froze_at < 30s) rig.RunFor(10ms);
  REQUIRE(rig.state() == DbState::kDown);
  if (follower_tries) CHECK(follower.tries >= 6);
  return rig.clock.Steady() - froze_at;
}

TEST_CASE("by traffic: a frozen server is found as fast with a follower's try ahead of the probe",
          "[runtime][unit][traffic][fleet]") {
  const auto plain = TimeToDown(false);
  const auto with_tries = TimeToDown(true);
  INFO("down after " << std::chrono::duration<double>(plain).count() << " s without tries, "
                     << std::chrono::duration<double>(with_tries).count() << " s with");
  // At most the one try cut at probe.timeout (the tick after a failed probe sends no try: the
  // database is no longer ready) and the probe interval's slack. Here connects are refused at
  // once; live, the probe's reconnect after the try broke the session adds up to
  // database.connect_timeout (probe_traffic_live_test: still within its 8 s bound).
  CHECK(with_tries <= plain + 500ms + 20ms);
}

}  // namespace
}  // namespace pgvigil
