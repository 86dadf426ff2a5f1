#include "pgstats/db_stats_collector.hpp"

#include <algorithm>
#include <limits>
#include <mutex>
#include <numeric>
#include <utility>

#include "pgstats/collector_bundle.hpp"
#include "telemetry/collector_metrics.hpp"
#include "util/heap_trim.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {
namespace {
// A collector that left the bundle is back in after this many successes alone in a row: 1 the
// first time, doubled each time it has to leave again, at most kMaxReadmitAfter (header).
constexpr int kMaxReadmitAfter = 32;
// The switched-off bundle is retried after kRetryFirst x stats.interval, doubled after each
// retry that fails the same way, at most kRetryMaxFactor x that first wait (header); 1 s at least.
constexpr int kRetryFirst = 10;
constexpr int kRetryMaxFactor = 16;
}  // namespace

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
    bool alone = false;         // failed alone after a failed bundle: out of the bundle
    bool on_probation = false;  // running alone after a failed bundle (a failure makes it alone)
    // While alone: its successes alone in a row; back in the bundle at readmit_after (0: never
    // left it), which doubles each time it has to leave again.
    int successes_alone = 0;
    int readmit_after = 0;
    std::chrono::system_clock::time_point alone_since{};
    std::string alone_reason;  // the error that made it alone (scrubbed, as `error`)
  };
  // The bundle's own record (collector_bundle.hpp), for the window rule and StatusJson.
  struct Bundle {
    std::chrono::steady_clock::duration last_took{};
    bool solo_next = false;  // after a timeout: the parts run alone once, to find the slow one
    long long runs = 0, failures = 0, timeouts = 0;
    int unexplained = 0;  // failures in a row whose parts all worked alone
    std::vector<std::string> last_parts;
    std::string error;  // the last failure's, "" after a success
    // Switched off (3 unexplained failures): tried again at off_until (a retry that fails
    // unexplained doubles `backoff`; one that fails for a part's sake is tried again next run);
    // a success switches it back on.
    std::optional<SteadyTime> off_until;
    std::chrono::steady_clock::duration backoff{};
    std::chrono::system_clock::time_point off_since{}, retry_at{};
  };

  mutable std::mutex mu;  // guards the status fields, next_due, last_run and bundle
  bool bundling = true;   // DbStatsOptions::bundle (false: never bundled)
  std::chrono::steady_clock::duration retry_first{};  // kRetryFirst x stats.interval
  std::vector<Entry> entries;
  Bundle bundle;
  std::optional<SteadyTime> last_start;
  std::chrono::system_clock::time_point last_run{};
  bool forgotten = false;  // Forget() ran and no run since: no pg_* series exported

  // Runs `order` (indices into entries), each bounded by min(its timeout, end); with
  // `check_fit` stops before one whose expected duration would pass `end` (FitsWindow).
  // The bundleable ones among them go as one statement, at the place of the first of them.
  DbStatsRunStatus RunOrder(const std::vector<std::size_t>& order, Connection& conn, SteadyTime now,
                            SteadyTime end, bool check_fit);
  // Runs one collector alone under `deadline` and records its outcome into `status`.
  void Run(Entry& e, Connection& conn, SteadyTime started, SteadyTime deadline,
           DbStatsRunStatus& status);
  // Runs the bundle of `parts`; on a failed statement runs them alone (a part that then fails
  // alone leaves the bundle). Returns the reply's size in bytes (0 without one).
  std::size_t RunBundle(const std::vector<std::size_t>& parts, std::vector<BundlePart> sql,
                        Connection& conn, SteadyTime started, SteadyTime end,
                        DbStatsRunStatus& status);
  void Record(Entry& e, Connection& conn, SteadyTime started, const std::optional<DbError>& err,
              DbStatsRunStatus& status);
};

void DbStatsCollector::State::Run(Entry& e, Connection& conn, SteadyTime started,
                                  SteadyTime deadline, DbStatsRunStatus& status) {
  std::optional<DbError> err = e.collector->Collect(conn, deadline);
  // The server would go on with the statement after we hung up: cancel it there.
  if (err && err->kind == ErrorKind::kTimeout) conn.RequestCancel();
  std::lock_guard lock(mu);
  if (err && err->kind == ErrorKind::kTimeout) ++e.timeouts;
  Record(e, conn, started, err, status);
}

// Records one collector's outcome (mu held). A failure removes its series (no stale series).
void DbStatsCollector::State::Record(Entry& e, Connection& conn, SteadyTime started,
                                     const std::optional<DbError>& err, DbStatsRunStatus& status) {
  const auto took = std::chrono::steady_clock::now() - started;
  const bool probation = std::exchange(e.on_probation, false);
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
    if (e.alone && ++e.successes_alone >= e.readmit_after) {
      e.alone = false;
      LogInfo("database statistics collector back in the bundle: it succeeded alone",
              {{"collector", e.name}, {"successes_alone", std::to_string(e.successes_alone)}});
    }
    return;
  }
  ++status.failed;
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
  e.successes_alone = 0;
  if (probation && !e.alone) {
    e.alone = true;
    e.readmit_after = e.readmit_after == 0 ? 1 : std::min(2 * e.readmit_after, kMaxReadmitAfter);
    e.alone_since = std::chrono::system_clock::now();
    e.alone_reason = e.error;
    LogWarn(
        "database statistics collector failed alone after a failed bundle; it runs alone "
        "until it succeeds alone readmit_after times in a row",
        {{"collector", e.name},
         {"readmit_after", std::to_string(e.readmit_after)},
         {"error", e.error}});
  }
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
  state_->bundling = options_.bundle;
  state_->retry_first = std::max<std::chrono::steady_clock::duration>(
      kRetryFirst * options_.interval, std::chrono::seconds(1));
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
  State& st = *state_;
  {
    std::lock_guard lock(st.mu);
    st.last_start = std::chrono::steady_clock::now();
    st.last_run = std::chrono::system_clock::now();
    st.forgotten = false;
  }
  std::vector<std::size_t> order(st.entries.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  return st.RunOrder(order, conn, std::chrono::steady_clock::now(), deadline, false);
}

DbStatsRunStatus DbStatsCollector::RunDue(Connection& conn, SteadyTime now, SteadyTime window_end) {
  State& st = *state_;
  std::vector<SteadyTime> next_due;
  {
    std::lock_guard lock(st.mu);
    for (const auto& e : st.entries) next_due.push_back(e.next_due);
    st.last_start = now;
    st.last_run = std::chrono::system_clock::now();
    st.forgotten = false;
  }
  return st.RunOrder(DueOrder(next_due, now), conn, now, window_end, true);
}

DbStatsRunStatus DbStatsCollector::State::RunOrder(const std::vector<std::size_t>& order,
                                                   Connection& conn, SteadyTime now, SteadyTime end,
                                                   bool check_fit) {
  DbStatsRunStatus status;
  // The bundle: the bundleable ones of this run, when there are two or more.
  std::vector<std::size_t> parts;
  std::vector<BundlePart> sql;
  bool solo = false;
  bool on = bundling;
  {
    std::lock_guard lock(mu);
    solo = bundle.solo_next;
    if (bundle.off_until && now < *bundle.off_until) on = false;  // switched off: not yet
  }
  for (std::size_t i : order) {
    if (!on || entries[i].alone || parts.size() >= kMaxBundleParts) continue;
    std::optional<std::string> part = entries[i].collector->BundleSql(conn);
    if (!part) continue;
    parts.push_back(i);
    sql.push_back({entries[i].name, std::move(*part)});
  }
  if (parts.size() < 2) {
    parts.clear();
  } else if (solo) {  // after a bundle timeout: this once alone, and the slow one is found
    std::lock_guard lock(mu);
    bundle.solo_next = false;
    for (std::size_t i : parts) entries[i].on_probation = true;
    parts.clear();
  }
  bool stopped = false;
  bool bundle_done = false;
  for (std::size_t i : order) {
    const bool in_bundle = std::find(parts.begin(), parts.end(), i) != parts.end();
    if (in_bundle && bundle_done) continue;
    const auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration expected{};
    {
      std::lock_guard lock(mu);
      expected = in_bundle ? bundle.last_took : entries[i].last_took;
    }
    const bool first = status.succeeded + status.failed == 0;
    if (!stopped && (status.connection_lost || conn.broken() ||
                     !FitsWindow(start, check_fit ? expected : decltype(expected){}, end,
                                 check_fit ? first : true))) {
      stopped = true;
    }
    if (in_bundle) bundle_done = true;
    if (stopped) {
      status.skipped += in_bundle ? static_cast<int>(parts.size()) : 1;
      continue;
    }
    if (in_bundle) {
      // The reply is every part's rows at once (~0.3 MB at 200 databases): give the heap pages
      // its parsing used back to the system once it is gone, as the statement sampler does.
      TrimHeapAfter(RunBundle(parts, std::exchange(sql, {}), conn, start, end, status));
    } else {
      Run(entries[i], conn, start, std::min(end, start + entries[i].timeout), status);
    }
  }
  return status;
}

std::size_t DbStatsCollector::State::RunBundle(const std::vector<std::size_t>& parts,
                                               std::vector<BundlePart> sql, Connection& conn,
                                               SteadyTime started, SteadyTime end,
                                               DbStatsRunStatus& status) {
  // The bundle's deadline: the latest of its parts' own, capped at the window's end.
  SteadyTime deadline = started;
  for (std::size_t i : parts) deadline = std::max(deadline, started + entries[i].timeout);
  deadline = std::min(deadline, end);
  auto res = conn.Exec(BundleStatement(sql), deadline);
  const std::size_t reply_bytes =
      res && res->Rows() == 1 ? static_cast<std::size_t>(PQgetlength(res->raw(), 0, 0)) : 0;
  std::optional<DbError> err;
  Result<BundleParts> reply = Fail("no reply");
  if (!res) {
    err = res.error();
  } else {
    reply = ReadBundleReply(*res, sql);
    if (!reply) err = DbError{ErrorKind::kServerError, "", reply.error()};
  }
  const bool timed_out = err && err->kind == ErrorKind::kTimeout;
  if (timed_out) conn.RequestCancel();  // the server would go on with it: cancel it there
  const bool lost = err && err->kind != ErrorKind::kServerError;
  {
    std::lock_guard lock(mu);
    bundle.last_took = std::chrono::steady_clock::now() - started;
    ++bundle.runs;
    bundle.last_parts.clear();
    for (const auto& p : sql) bundle.last_parts.push_back(p.name);
    if (err) {
      ++bundle.failures;
      if (timed_out) ++bundle.timeouts;
      bundle.solo_next = timed_out;
      if (bundle.error.empty()) {  // log transitions, not every run
        LogWarn("database statistics bundle failed; its collectors run alone",
                {{"kind", std::string(ErrorKindName(err->kind))}, {"error", err->message}});
      }
      bundle.error = std::string(ErrorKindName(err->kind)) + ": " + err->message;
    } else {
      bundle.error.clear();
      bundle.unexplained = 0;
      if (std::exchange(bundle.off_until, std::nullopt)) {
        bundle.backoff = {};
        LogInfo("database statistics bundle back on: its retry succeeded");
      }
    }
  }
  if (!err) {
    for (std::size_t k = 0; k < parts.size(); ++k) {
      Entry& e = entries[parts[k]];
      std::optional<DbError> part_err =
          e.collector->Publish(reply->at(sql[k].name), conn, deadline);
      std::lock_guard lock(mu);
      e.on_probation = false;
      Record(e, conn, started, part_err, status);  // the bundle's duration is each part's
    }
    return reply_bytes;
  }
  if (lost) {  // a timeout or a lost connection: none published, the session goes
    DbError part_err = *err;
    part_err.message = "in the bundle: " + part_err.message;
    std::lock_guard lock(mu);
    for (std::size_t i : parts) {
      entries[i].on_probation = false;
      Record(entries[i], conn, started, part_err, status);
    }
    return reply_bytes;
  }
  // A statement error (a missing view, a permission, an old server): this time each alone; one
  // that fails alone stays out of the bundle from now on.
  const int failed_before = status.failed;
  bool all_ran = true;
  for (std::size_t i : parts) {
    Entry& e = entries[i];
    const auto start = std::chrono::steady_clock::now();
    if (status.connection_lost || conn.broken() || start >= end) {
      ++status.skipped;
      all_ran = false;
      continue;
    }
    {
      std::lock_guard lock(mu);
      e.on_probation = true;
    }
    Run(e, conn, start, std::min(end, start + e.timeout), status);
  }
  // Failing while every part works alone, three times in a row: the bundle itself is the
  // problem (its reply), so it is switched off rather than costing a statement more every run,
  // and retried after a backoff; a retry that fails so once more doubles the backoff.
  std::lock_guard lock(mu);
  bundle.unexplained = all_ran && status.failed == failed_before ? bundle.unexplained + 1 : 0;
  const bool retry = bundle.off_until.has_value();
  if (retry ? bundle.unexplained > 0 : bundle.unexplained >= 3) {
    bundle.backoff =
        retry ? std::min(2 * bundle.backoff, kRetryMaxFactor * retry_first) : retry_first;
    const auto now = std::chrono::steady_clock::now();
    bundle.off_until = now + bundle.backoff;
    const auto wall = std::chrono::system_clock::now();
    if (!retry) bundle.off_since = wall;
    bundle.retry_at =
        wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(bundle.backoff);
    LogWarn(retry ? "database statistics bundle retry failed while its collectors worked alone; "
                    "switched off again, retried later"
                  : "database statistics bundle switched off: it failed three times while its "
                    "collectors worked alone; they run alone until it is retried",
            {{"error", bundle.error},
             {"retry_in_seconds",
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(bundle.backoff).count())}});
  }
  return reply_bytes;
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
  nlohmann::json b;
  b["enabled"] = st.bundling && !st.bundle.off_until;
  if (st.bundle.off_until) {  // switched off: since when, and when it is tried again
    b["off_since"] = FormatRfc3339Utc(st.bundle.off_since);
    b["retry_at"] = FormatRfc3339Utc(st.bundle.retry_at);
    b["retry_backoff_seconds"] = std::chrono::duration<double>(st.bundle.backoff).count();
  }
  b["runs"] = st.bundle.runs;
  b["failures"] = st.bundle.failures;
  b["timeouts"] = st.bundle.timeouts;
  b["duration_seconds"] = std::chrono::duration<double>(st.bundle.last_took).count();
  b["last_parts"] = st.bundle.last_parts;
  nlohmann::json alone = nlohmann::json::array();
  nlohmann::json alone_detail = nlohmann::json::object();
  for (const auto& e : st.entries) {
    if (!e.alone) continue;
    alone.push_back(e.name);
    alone_detail[e.name] = {{"since", FormatRfc3339Utc(e.alone_since)},
                            {"reason", e.alone_reason},
                            {"successes_alone", e.successes_alone},
                            {"readmit_after", e.readmit_after}};
  }
  b["alone"] = std::move(alone);
  b["alone_detail"] = std::move(alone_detail);
  if (!st.bundle.error.empty()) b["error"] = st.bundle.error;
  j["bundle"] = std::move(b);
  return j;
}

}  // namespace pgvigil
