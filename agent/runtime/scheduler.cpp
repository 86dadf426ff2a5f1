#include "runtime/scheduler.hpp"

#include <algorithm>
#include <exception>

#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

namespace {
const char* KindName(JobOutcome::Kind k) {
  switch (k) {
    case JobOutcome::Kind::kDone:
      return "done";
    case JobOutcome::Kind::kMoreToDo:
      return "more_to_do";
    case JobOutcome::Kind::kSkipped:
      return "skipped";
    case JobOutcome::Kind::kFailed:
      return "failed";
  }
  return "failed";
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

Scheduler::Scheduler(const Clock& clock, Lifecycle& lifecycle, AgentMetrics& metrics,
                     ProbeJob& probe, std::vector<Job*> jobs, SchedulerHooks hooks)
    : clock_(clock),
      lifecycle_(lifecycle),
      metrics_(metrics),
      probe_(probe),
      hooks_(std::move(hooks)) {
  for (Job* job : jobs) {
    Entry e;
    e.job = job;
    entries_.push_back(std::move(e));
  }
  probe_due_ = clock_.Steady();
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  lifecycle_.Beat();
  if (hooks_.publish) Guarded("publish", hooks_.publish);
  thread_ = std::jthread([this](std::stop_token st) { Run(st); });
}

void Scheduler::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  wake_cv_.notify_all();
  thread_.join();
}

void Scheduler::RequestWake() {
  {
    std::lock_guard lock(wake_mu_);
    wake_requested_ = true;
  }
  wake_cv_.notify_all();
}

void Scheduler::Run(std::stop_token stop) {
  probe_due_ = clock_.Steady();
  while (!stop.stop_requested()) {
    lifecycle_.Beat();
    bool woken = false;
    {
      std::lock_guard lock(wake_mu_);
      woken = std::exchange(wake_requested_, false);
    }
    if (!Guarded("scheduler", [&] { Turn(woken); })) {
      // Whatever threw may throw again at once: wait a probe interval, do not spin.
      probe_due_ = std::max(probe_due_, clock_.Steady() + probe_.interval());
    }
    if (hooks_.publish) Guarded("publish", hooks_.publish);
    const auto wake_at = NextWake();
    std::unique_lock lock(wake_mu_);
    wake_cv_.wait_until(lock, stop,
                        std::min(wake_at, std::chrono::steady_clock::now() + kHeartbeat),
                        [this] { return wake_requested_; });
  }
  if (hooks_.shutdown) Guarded("scheduler", hooks_.shutdown);
  if (hooks_.publish) Guarded("publish", hooks_.publish);
}

JobContext Scheduler::Context(std::chrono::steady_clock::time_point window_end, bool woken) {
  return JobContext{clock_,
                    clock_.Steady(),
                    window_end,
                    woken,
                    probe_.database_ready(),
                    [this](const char* component, const std::function<void()>& fn) {
                      return Guarded(component, fn);
                    }};
}

void Scheduler::Turn(bool woken) {
  const bool probe_now = probe_.OnTurn(clock_, woken);
  lifecycle_.Beat();
  const auto now = clock_.Steady();
  if (probe_.probing() && (now >= probe_due_ || woken || probe_now)) {
    gate_ = Gate::kUnasked;
    // By traffic: due jobs on the probe's pool first, on a database the last probe found usable
    // (the Neon policy has already decided to probe at all); their outcome stands for the probe.
    std::optional<TickTraffic> traffic;
    if (!woken && !probe_now && probe_.reuse_traffic() && probe_.database_ready()) {
      traffic = RunBeforeProbe();
      lifecycle_.Beat();
    }
    JobContext ctx = Context(std::chrono::steady_clock::time_point::max(), woken);
    JobOutcome out;
    if (Guarded("probe", [&] { out = probe_.Run(ctx, traffic ? &*traffic : nullptr); })) {
      probe_due_ = out.next_run.value_or(clock_.Steady() + probe_.interval());
    } else {
      probe_due_ = clock_.Steady() + probe_.interval();
    }
    lifecycle_.Beat();
    // The window opens right after a probe, on a database the probe just found usable: a job
    // never meets a suspended compute before the probe does (57P01 stays the probe's to see).
    if (out.kind == JobOutcome::Kind::kDone && probe_.database_ready()) RunWindow();
  }
  if (hooks_.maintain) hooks_.maintain();
}

bool Scheduler::MayRunJobs(std::chrono::steady_clock::time_point window_end) {
  if (gate_ == Gate::kUnasked) {
    bool may = true;
    if (hooks_.may_run_jobs) {
      const JobContext ctx = Context(window_end, false);
      may = false;
      if (!Guarded("scheduler", [&] { may = hooks_.may_run_jobs(ctx); })) may = false;
    }
    gate_ = may ? Gate::kPassed : Gate::kDenied;
  }
  return gate_ == Gate::kPassed;
}

std::optional<TickTraffic> Scheduler::RunBeforeProbe() {
  if (!hooks_.on_probe_target) return std::nullopt;
  const auto now = clock_.Steady();
  const auto end = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::nanoseconds(probe_.timeout()));
  std::vector<Entry*> due;
  for (Entry& e : entries_) {
    if (e.due > now || !e.job->NeedsDatabase() || e.expected > kBeforeProbeBudget) continue;
    bool on_target = false;
    if (!Guarded("scheduler", [&] { on_target = hooks_.on_probe_target(*e.job); })) continue;
    if (on_target) due.push_back(&e);
  }
  if (due.empty()) return std::nullopt;
  std::stable_sort(due.begin(), due.end(),
                   [](const Entry* a, const Entry* b) { return a->expected < b->expected; });
  struct IdleSessionsOnly {  // jobs never connect ahead of the probe, whatever happens
    const std::function<void(bool)>& hook;
    explicit IdleSessionsOnly(const std::function<void(bool)>& h) : hook(h) {
      if (hook) hook(true);
    }
    ~IdleSessionsOnly() {
      if (hook) hook(false);
    }
  } idle_only(hooks_.before_probe);
  // From here a statement may run (the fleet gate's too): the probe gets to see what it met.
  TickTraffic traffic{probe_.Statements(), false};
  if (!MayRunJobs(end)) {
    // Fleet follower: no job runs, but the gate's own statement (its election retry, when due)
    // ran on the probe's pool under the same bounds; its success stands for the probe as a
    // job's would. No statement, or a failed one: the probe statement decides.
    const StatementTally after = probe_.Statements();
    traffic.jobs_ok = after.ok > traffic.since.ok && after.failed == traffic.since.failed;
    return traffic;
  }
  for (Entry* e : due) {
    if (clock_.Steady() + e->expected > end) break;  // no room left: the probe decides
    if (!RunEntry(*e, end)) break;  // at the first failure the probe statement decides
    lifecycle_.Beat();
    if (probe_.Statements().ok > traffic.since.ok) {
      traffic.jobs_ok = true;  // one success stands for the probe
      break;
    }
  }
  return traffic;
}

void Scheduler::RunWindow() {
  const auto window_end = probe_due_ - kWindowMargin;
  std::vector<Entry*> order;
  for (Entry& e : entries_) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(),
                   [](const Entry* a, const Entry* b) { return a->due < b->due; });
  for (Entry* e : order) {
    const auto now = clock_.Steady();
    if (e->due > now) break;  // sorted: nothing later is due either
    if (!probe_.database_ready()) break;
    if (!MayRunJobs(window_end)) return;
    // No room at all (a statement sent at the window's end would only time out), or the job's
    // last duration does not fit what is left: the next window. One deferred kMaxDeferrals
    // times runs on whatever room there is, so it makes progress and is measured again.
    const bool no_room = now + kWindowMargin > window_end;
    if (no_room || (now + e->expected > window_end && e->deferrals < kMaxDeferrals)) {
      ++e->deferrals;  // does not fit what is left of this window: the next one
      ++e->deferred_total;
      continue;
    }
    RunEntry(*e, window_end);
    lifecycle_.Beat();
  }
}

bool Scheduler::RunEntry(Entry& e, std::chrono::steady_clock::time_point window_end) {
  e.deferrals = 0;
  JobContext ctx = Context(window_end, false);
  const auto started = ctx.started;
  JobOutcome out;
  const std::string name(e.job->name());
  const bool ok = Guarded(name.c_str(), [&] { out = e.job->Run(ctx); });
  const auto ended = clock_.Steady();
  e.expected = ended - started;
  e.last_run_at = clock_.Wall();
  ++e.runs;
  if (!ok) out = JobOutcome::Failed();
  if (out.kind == JobOutcome::Kind::kFailed) ++e.failures;
  e.last_outcome = ok ? KindName(out.kind) : "exception";
  if (out.next_run) {
    e.due = *out.next_run;
  } else if (out.kind == JobOutcome::Kind::kMoreToDo) {
    e.due = ended;  // the next window
  } else if (out.kind == JobOutcome::Kind::kSkipped) {
    // No connection now (the sampling pool backs off): the next window looks again.
  } else {
    e.due = started +
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(e.job->interval());
  }
  return ok && (out.kind == JobOutcome::Kind::kDone || out.kind == JobOutcome::Kind::kMoreToDo);
}

void Scheduler::MakeAllDue() {
  for (Entry& e : entries_) e.due = {};
}

std::chrono::steady_clock::time_point Scheduler::NextWake() const {
  const auto now = clock_.Steady();
  const auto heartbeat = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::nanoseconds(kHeartbeat));
  if (!probe_.probing()) return heartbeat;
  return std::min(probe_due_, heartbeat);
}

bool Scheduler::Guarded(const char* component, const std::function<void()>& fn) {
  std::string what;
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  // Counting and logging must not throw in turn (they only allocate small strings).
  try {
    ++errors_.by_component[component];
    metrics_.RecordInternalError(component);
    errors_.last = std::string(component) + ": " + what;
    errors_.last_at = clock_.Wall();
    LogError("internal error caught; pgvigil goes on", {{"component", component}, {"error", what}});
  } catch (...) {
  }
  return false;
}

nlohmann::json Scheduler::JobsStatus() const {
  nlohmann::json j = nlohmann::json::object();
  const auto now = clock_.Steady();
  for (const Entry& e : entries_) {
    nlohmann::json s;
    s["interval_seconds"] = std::chrono::duration<double>(e.job->interval()).count();
    s["runs"] = e.runs;
    s["failures"] = e.failures;
    s["deferred_windows"] = e.deferred_total;
    s["last_outcome"] = e.last_outcome.empty() ? nlohmann::json() : nlohmann::json(e.last_outcome);
    s["last_run_at"] =
        e.last_run_at ? nlohmann::json(FormatRfc3339Utc(*e.last_run_at)) : nlohmann::json();
    s["last_duration_seconds"] = Seconds(e.expected);
    s["next_run_in_seconds"] = std::max(0.0, Seconds(e.due - now));
    if (auto status = e.job->Status(); !status.is_null()) s["status"] = std::move(status);
    j[std::string(e.job->name())] = std::move(s);
  }
  return j;
}

}  // namespace pgvigil
