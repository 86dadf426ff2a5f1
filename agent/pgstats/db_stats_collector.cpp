#include "pgstats/db_stats_collector.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <numeric>

#include "telemetry/collector_metrics.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

std::vector<std::size_t> DueOrder(const std::vector<SteadyTime>& next_due, SteadyTime now) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < next_due.size(); ++i) {
    if (next_due[i] <= now) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return next_due[a] < next_due[b]; });
  return order;
}

bool FitsWindow(SteadyTime now, std::chrono::steady_clock::duration expected, SteadyTime window_end,
                bool first_in_window) {
  if (now >= window_end) return false;
  return first_in_window || now + expected <= window_end;
}

std::chrono::milliseconds CollectorInterval(const std::string& name, std::chrono::milliseconds min,
                                            const DbStatsOptions& options) {
  auto it = options.intervals.find(name);
  if (it != options.intervals.end()) return it->second;
  return std::max(options.interval, min);
}

struct DbStatsCollector::State {
  struct Entry {
    std::unique_ptr<Collector> collector;
    std::string name;
    std::chrono::milliseconds interval{};
    std::chrono::milliseconds timeout{};
    std::unique_ptr<CollectorMetrics> metrics;
    SteadyTime next_due{};                            // epoch: due at once
    std::chrono::steady_clock::duration last_took{};  // the expected duration of the next run
    // Last outcome, for StatusJson (guarded by mu).
    bool ran = false;
    bool ok = false;
    double duration_seconds = 0;
    long long timeouts = 0;
    std::chrono::system_clock::time_point last_success{};
    std::string error;
  };

  mutable std::mutex mu;  // guards the status fields, next_due and last_run
  std::vector<Entry> entries;
  std::optional<SteadyTime> last_start;
  std::chrono::system_clock::time_point last_run{};
  bool forgotten = false;  // Forget() ran and no run since: no pg_* series exported

  // Runs one collector under `deadline` and records its outcome into `status`.
  void Run(Entry& e, Connection& conn, SteadyTime started, SteadyTime deadline,
           DbStatsRunStatus& status);
};

void DbStatsCollector::State::Run(Entry& e, Connection& conn, SteadyTime started,
                                  SteadyTime deadline, DbStatsRunStatus& status) {
  std::optional<DbError> err = e.collector->Collect(conn, deadline);
  const auto took = std::chrono::steady_clock::now() - started;
  const bool timed_out = err && err->kind == ErrorKind::kTimeout;
  // The server would go on with the statement after we hung up: cancel it there.
  if (timed_out) conn.RequestCancel();
  std::lock_guard lock(mu);
  e.next_due = started + e.interval;
  e.last_took = took;
  e.ran = true;
  e.duration_seconds = std::chrono::duration<double>(took).count();
  if (!err) {
    ++status.succeeded;
    e.metrics->RecordSuccess(took);
    e.ok = true;
    e.last_success = std::chrono::system_clock::now();
    e.error.clear();
    return;
  }
  ++status.failed;
  if (timed_out) ++e.timeouts;
  e.collector->Forget();  // no stale series: gone until the collector works again
  e.metrics->RecordFailure(took);
  if (e.ok || e.error.empty()) {  // log transitions, not every run
    LogWarn("database statistics collector failed",
            {{"collector", e.name},
             {"kind", std::string(ErrorKindName(err->kind))},
             {"error", err->message}});
  }
  e.ok = false;
  e.error = std::string(ErrorKindName(err->kind)) + ": " + err->message;
  if (conn.broken() || err->ConnectionLost()) status.connection_lost = true;
}

DbStatsCollector::DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options)
    : DbStatsCollector(registry, std::move(options), [&registry] {
        std::vector<std::unique_ptr<Collector>> all;
        for (CollectorFactory make : AllCollectors()) all.push_back(make(registry));
        return all;
      }()) {}

DbStatsCollector::DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options,
                                   std::vector<std::unique_ptr<Collector>> collectors)
    : options_(std::move(options)), state_(std::make_unique<State>()) {
  for (auto& c : collectors) {
    State::Entry e;
    e.name = c->name();
    e.interval = CollectorInterval(e.name, c->min_interval(), options_);
    auto t = options_.timeouts.find(e.name);
    e.timeout = t != options_.timeouts.end() ? t->second : options_.query_timeout;
    e.metrics = std::make_unique<CollectorMetrics>(registry, e.name);
    e.collector = std::move(c);
    state_->entries.push_back(std::move(e));
  }
}

DbStatsCollector::~DbStatsCollector() = default;

DbStatsRunStatus DbStatsCollector::RunAll(Connection& conn) {
  return RunAll(conn, std::chrono::steady_clock::now() + options_.interval);
}

DbStatsRunStatus DbStatsCollector::RunAll(Connection& conn, SteadyTime deadline) {
  DbStatsRunStatus status;
  State& st = *state_;
  {
    std::lock_guard lock(st.mu);
    st.last_start = std::chrono::steady_clock::now();
    st.last_run = std::chrono::system_clock::now();
    st.forgotten = false;
  }
  for (auto& e : st.entries) {
    const auto now = std::chrono::steady_clock::now();
    if (status.connection_lost || conn.broken() || now >= deadline) {
      ++status.skipped;
      continue;
    }
    st.Run(e, conn, now, std::min(deadline, now + e.timeout), status);
  }
  return status;
}

DbStatsRunStatus DbStatsCollector::RunDue(Connection& conn, SteadyTime now, SteadyTime window_end) {
  DbStatsRunStatus status;
  State& st = *state_;
  std::vector<SteadyTime> next_due;
  {
    std::lock_guard lock(st.mu);
    for (const auto& e : st.entries) next_due.push_back(e.next_due);
    st.last_start = now;
    st.last_run = std::chrono::system_clock::now();
    st.forgotten = false;
  }
  const std::vector<std::size_t> order = DueOrder(next_due, now);
  bool stopped = false;
  for (std::size_t i : order) {
    State::Entry& e = st.entries[i];
    const auto start = std::chrono::steady_clock::now();
    if (!stopped &&
        (status.connection_lost || conn.broken() ||
         !FitsWindow(start, e.last_took, window_end, status.succeeded + status.failed == 0))) {
      stopped = true;
    }
    if (stopped) {
      ++status.skipped;
      continue;
    }
    st.Run(e, conn, start, std::min(window_end, start + e.timeout), status);
  }
  return status;
}

bool DbStatsCollector::Due(SteadyTime now) const { return NextDue() <= now; }

SteadyTime DbStatsCollector::NextDue() const {
  std::lock_guard lock(state_->mu);
  SteadyTime next = SteadyTime::max();
  for (const auto& e : state_->entries) next = std::min(next, e.next_due);
  return next;
}

void DbStatsCollector::Forget() {
  for (auto& e : state_->entries) e.collector->Forget();
  std::lock_guard lock(state_->mu);
  state_->forgotten = true;
  for (auto& e : state_->entries) e.next_due = SteadyTime{};  // collect again as soon as allowed
}

nlohmann::json DbStatsCollector::StatusJson() const {
  const State& st = *state_;
  std::lock_guard lock(st.mu);
  nlohmann::json j;
  j["interval_seconds"] = std::chrono::duration<double>(options_.interval).count();
  j["last_run"] = st.last_start ? nlohmann::json(FormatRfc3339Utc(st.last_run)) : nlohmann::json();
  j["series_exported"] = st.last_start.has_value() && !st.forgotten;
  nlohmann::json cs = nlohmann::json::object();
  for (const auto& e : st.entries) {
    nlohmann::json one;
    one["ok"] = e.ran && e.ok;
    one["ran"] = e.ran;
    one["duration_seconds"] = e.duration_seconds;
    one["interval_seconds"] = std::chrono::duration<double>(e.interval).count();
    one["timeout_seconds"] = std::chrono::duration<double>(e.timeout).count();
    one["errors"] = e.metrics->errors();
    one["timeouts"] = e.timeouts;
    one["last_success"] = e.last_success.time_since_epoch().count() == 0
                              ? nlohmann::json()
                              : nlohmann::json(FormatRfc3339Utc(e.last_success));
    if (!e.error.empty()) one["error"] = e.error;
    cs[e.name] = std::move(one);
  }
  j["collectors"] = std::move(cs);
  return j;
}

}  // namespace pgvigil
