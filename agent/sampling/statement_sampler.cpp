#include "sampling/statement_sampler.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>

#include "sampling/statement_rows.hpp"
#include "telemetry/series.hpp"
#include "util/heap_trim.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {
namespace {

// How far past top_n we look for texts, so that a few of pgvigil's own statements (excluded
// once their text is known) cannot push real statements out of the lists.
constexpr int kTextSlack = 16;
constexpr std::size_t kMaxOwnQueryids = 256;
// Samples of at least this many rows hand their freed memory back to the system after.
constexpr int kTrimAfterRows = 1000;

std::atomic<int> g_throw_runs_for_test{0};

std::vector<std::string> SplitNonEmpty(const std::string& s) {  // "a,,b" -> {a, b}
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

bool IsOwnText(std::string_view raw) {
  std::size_t i = 0;
  while (i < raw.size() && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r')) {
    ++i;
  }
  return raw.substr(i, kSamplerTag.size()) == kSamplerTag;
}

// SQLSTATEs that mean the extension (or its library) is not usable, as opposed to a failure of
// this run: undefined_table, undefined_function, undefined_column (shape changed under us),
// object_not_in_prerequisite_state (not in shared_preload_libraries).
bool MeansUnavailable(const DbError& e) {
  return e.sqlstate == "42P01" || e.sqlstate == "42883" || e.sqlstate == "42703" ||
         e.sqlstate == "55000";
}

}  // namespace

void StatementSampler::ThrowOnNextRunsForTest(int runs) { g_throw_runs_for_test = runs; }

StatementSampler::StatementSampler(const SamplingSettings& settings, SamplingMetrics& metrics)
    : settings_(settings), metrics_(metrics), history_(settings.history) {
  if (!settings_.enabled) status_ = CollectorStatus::kDisabled;
}

SamplerRunResult StatementSampler::Fail(SamplerRunResult r, const DbError& e) {
  r.status = CollectorStatus::kError;
  r.message = "reading pg_stat_statements failed: " + SanitizeUtf8(e.message);
  r.error = e;
  return r;
}

std::optional<DbError> StatementSampler::Detect(Connection& conn, SteadyTime deadline,
                                                bool* installed) {
  *installed = false;
  auto res = conn.Exec(ExtensionProbeSql(), deadline);
  if (!res) return res.error();
  const QueryResult& q = *res;
  if (q.Rows() == 0 || q.IsNull(0, 2)) return std::nullopt;
  std::string error;
  auto cols = DetectStatementColumns(SplitNonEmpty(q.Text(0, 2)), q.Text(0, 0), q.Text(0, 3) == "t",
                                     &error);
  extversion_ = q.Text(0, 1);
  if (!cols) {
    message_ = error;
    return std::nullopt;
  }
  columns_ = std::move(cols);
  *installed = true;
  return std::nullopt;
}

const QueryText* StatementSampler::CachedTextFor(std::int64_t queryid) {
  auto it = cache_index_.find(queryid);
  if (it == cache_index_.end()) return nullptr;
  cache_.splice(cache_.begin(), cache_, it->second);
  return &it->second->text;
}

const QueryText* StatementSampler::PeekText(std::int64_t queryid) const {
  auto it = cache_index_.find(queryid);
  return it == cache_index_.end() ? nullptr : &it->second->text;
}

// One shared identity per statement while the history holds it; a new one when its text or
// names changed (windows already stored keep the identity they were stored with).
std::shared_ptr<const StatementIdentity> StatementSampler::IdentityFor(const StatementDelta& d) {
  const QueryText* text = PeekText(d.key.queryid);
  auto& slot = identities_[d.key];
  const bool text_changed = slot && (text ? !slot->text || slot->text->text != text->text : false);
  if (!slot || text_changed || slot->datname != d.datname || slot->usename != d.usename) {
    auto who = std::make_shared<StatementIdentity>();
    who->key = d.key;
    who->datname = d.datname;
    who->usename = d.usename;
    if (text) who->text = *text;
    slot = std::move(who);
  }
  return slot;
}

void StatementSampler::Remember(std::int64_t queryid, QueryText text) {
  auto it = cache_index_.find(queryid);
  if (it != cache_index_.end()) {
    it->second->text = std::move(text);
    cache_.splice(cache_.begin(), cache_, it->second);
    return;
  }
  cache_.push_front(CachedText{queryid, std::move(text)});
  cache_index_[queryid] = cache_.begin();
  const std::size_t cap = static_cast<std::size_t>(std::max(1, settings_.text_cache_size));
  while (cache_.size() > cap) {
    cache_index_.erase(cache_.back().queryid);
    cache_.pop_back();
  }
}

std::optional<DbError> StatementSampler::FetchTexts(Connection& conn, SteadyTime deadline,
                                                    const std::vector<std::int64_t>& queryids) {
  if (queryids.empty()) return std::nullopt;
  std::string array = "{";
  for (std::size_t i = 0; i < queryids.size(); ++i) {
    if (i > 0) array += ",";
    array += std::to_string(queryids[i]);
  }
  array += "}";
  // Obfuscation drops comments and literals, so read more than we show, within reason.
  const long long max_chars =
      std::clamp<long long>(static_cast<long long>(settings_.max_query_length) * 8, 8192, 1 << 20);
  auto res = conn.Exec(StatementTextsSql(*columns_), {array, std::to_string(max_chars)}, deadline);
  if (!res) return res.error();
  const QueryResult& q = *res;
  for (int i = 0; i < q.Rows(); ++i) {
    auto queryid = q.Int(i, 0);
    if (!queryid) continue;
    std::string raw = q.Text(i, 1);
    if (IsOwnText(raw)) {
      if (own_queryids_.size() < kMaxOwnQueryids) own_queryids_.insert(*queryid);
      continue;
    }
    Remember(*queryid, PrepareQueryText(raw, settings_.query_text,
                                        static_cast<std::size_t>(settings_.max_query_length)));
  }
  return std::nullopt;
}

SamplerRunResult StatementSampler::Run(Connection& conn, SteadyTime deadline, SystemTime now) {
  SamplerRunResult r = Sample(conn, deadline, now);
  // A big sample's rows, result and deltas are freed by now, but glibc keeps the pages: give
  // them back, so memory follows what is kept (baseline, history, texts), not the peak.
  if (r.rows >= kTrimAfterRows) TrimHeap();
  return r;
}

SamplerRunResult StatementSampler::Sample(Connection& conn, SteadyTime deadline, SystemTime now) {
  const auto started = std::chrono::steady_clock::now();
  if (g_throw_runs_for_test.load() > 0 && g_throw_runs_for_test.fetch_sub(1) > 0) {
    throw std::runtime_error("statement sampler fault injected for a test");
  }
  SamplerRunResult r;
  auto finish = [&](SamplerRunResult result) {
    result.took = std::chrono::steady_clock::now() - started;
    last_run_ = now;
    status_ = result.status;
    message_ = result.message;
    switch (result.status) {
      case CollectorStatus::kError:
        metrics_.statements_collector().RecordFailure(result.took);
        break;
      case CollectorStatus::kOk:
      case CollectorStatus::kUnavailable:  // the run worked; the gauge says what is missing
        metrics_.statements_collector().RecordSuccess(result.took, now);
        last_success_ = now;
        break;
      default:
        break;
    }
    return result;
  };
  if (!settings_.enabled) {
    r.status = CollectorStatus::kDisabled;
    return finish(r);
  }
  auto unavailable = [&](std::string why) {
    if (status_ != CollectorStatus::kUnavailable) {
      LogWarn("statement sampling unavailable", {{"reason", why}});
    }
    columns_.reset();
    differ_.Clear();
    last_dealloc_.reset();
    top_by_time_.clear();
    top_by_calls_.clear();
    metrics_.SetStatementsAvailable(false);
    SamplerRunResult u;
    u.status = CollectorStatus::kUnavailable;
    u.message = std::move(why);
    return finish(u);
  };

  if (!columns_) {
    bool installed = false;
    message_.clear();
    if (auto err = Detect(conn, deadline, &installed)) return finish(Fail(r, *err));
    if (!installed) return unavailable(message_.empty() ? kPgStatStatementsMissing : message_);
  }

  // Epoch first: a reset between the two reads then shows up no later than the next sample.
  auto info = conn.Exec(StatementsInfoSql(*columns_), deadline);
  if (!info) {
    if (MeansUnavailable(info.error())) {
      return unavailable(info.error().sqlstate == "55000"
                             ? std::string(kPgStatStatementsMissing) + ": " +
                                   SanitizeUtf8(info.error().message)
                             : kPgStatStatementsMissing);
    }
    return finish(Fail(r, info.error()));
  }
  auto stats = conn.Exec(StatementsSql(*columns_), deadline);
  if (!stats) {
    if (MeansUnavailable(stats.error())) {
      return unavailable(stats.error().sqlstate == "55000"
                             ? std::string(kPgStatStatementsMissing) + ": " +
                                   SanitizeUtf8(stats.error().message)
                             : kPgStatStatementsMissing);
    }
    return finish(Fail(r, stats.error()));
  }
  metrics_.SetStatementsAvailable(true);

  const QueryResult& iq = *info;
  StatsEpoch epoch;
  std::optional<double> server_now;
  if (iq.Rows() > 0) {
    if (iq.Columns() > 4) server_now = iq.Double(0, 4);
    epoch.postmaster_start = iq.Text(0, 0);
    epoch.stats_reset = iq.Text(0, 3);
    max_entries_.reset();
    try {
      if (!iq.IsNull(0, 1)) max_entries_ = std::stoll(iq.Text(0, 1));
    } catch (const std::exception&) {
    }
    dealloc_ = iq.Int(0, 2);
  }
  std::int64_t evictions = 0;
  if (dealloc_) {
    if (last_dealloc_) {  // the first sample only sets the baseline
      // After a reset (stats_reset moved) all of it is new.
      const double before = epoch.stats_reset == last_stats_reset_ ? double(*last_dealloc_) : 0;
      evictions = static_cast<std::int64_t>(CounterGrowth(before, double(*dealloc_)));
    }
    metrics_.AddDealloc(double(evictions));
    last_dealloc_ = dealloc_;
  }
  last_stats_reset_ = epoch.stats_reset;

  const QueryResult& sq = *stats;
  std::vector<StatementRow> rows = ParseStatementRows(sq);
  entries_ = sq.Rows() > 0 ? sq.Int(0, 13).value_or(sq.Rows()) : 0;
  metrics_.SetStatementsEntries(double(*entries_), max_entries_ ? double(*max_entries_) : -1);
  r.rows = sq.Rows();

  DiffOutcome diff = differ_.Apply(epoch, std::move(rows), server_now);
  rebaselined_ = diff.epoch_changed;
  if (diff.epoch_changed) {
    LogInfo("pg_stat_statements was reset or the server restarted; re-baselined");
  }
  window_seconds_.reset();
  // A window exists when this sample was compared with a previous one of the same epoch.
  std::optional<SystemTime> window_start;
  if (previous_sample_ && !diff.epoch_changed && !diff.first_sample) {
    window_seconds_ = std::chrono::duration<double>(now - *previous_sample_).count();
    window_start = previous_sample_;
  }
  previous_sample_ = now;
  window_evictions_ = evictions;
  window_new_statements_ = diff.new_keys;

  // Texts for the statements that may make the top lists and are not cached yet.
  std::vector<StatementDelta>& deltas = diff.deltas;
  auto not_own = [&](const StatementDelta& d) { return own_queryids_.count(d.key.queryid) == 0; };
  std::vector<const StatementDelta*> by_time, by_calls, by_mean, by_rows;
  for (const auto& d : deltas) {
    if (not_own(d)) by_time.push_back(&d);
  }
  by_calls = by_mean = by_rows = by_time;
  std::sort(by_time.begin(), by_time.end(),
            [](auto* a, auto* b) { return a->delta.total_exec_ms > b->delta.total_exec_ms; });
  std::sort(by_calls.begin(), by_calls.end(),
            [](auto* a, auto* b) { return a->delta.calls > b->delta.calls; });
  // Only their heads matter (for texts): partial sorts.
  const std::size_t top_n = static_cast<std::size_t>(std::max(0, settings_.top_n));
  const std::size_t head = std::min(by_time.size(), top_n + kTextSlack);
  std::partial_sort(by_mean.begin(), by_mean.begin() + static_cast<std::ptrdiff_t>(head),
                    by_mean.end(),
                    [](auto* a, auto* b) { return a->mean_exec_ms() > b->mean_exec_ms(); });
  std::partial_sort(by_rows.begin(), by_rows.begin() + static_cast<std::ptrdiff_t>(head),
                    by_rows.end(), [](auto* a, auto* b) { return a->delta.rows > b->delta.rows; });
  std::vector<std::int64_t> wanted;
  std::unordered_set<std::int64_t> wanted_set;
  // Texts for the leaders by every sort /queries offers, so its aggregated lists have texts.
  for (const auto* list : {&by_time, &by_calls, &by_mean, &by_rows}) {
    for (std::size_t i = 0; i < list->size() && i < top_n + kTextSlack; ++i) {
      std::int64_t id = (*list)[i]->key.queryid;
      if (cache_index_.count(id) == 0 && wanted_set.insert(id).second) wanted.push_back(id);
    }
  }
  std::optional<DbError> text_error = FetchTexts(conn, deadline, wanted);

  // Totals, histogram and top lists over everything that is not pgvigil's own.
  double calls = 0, exec_ms = 0, nrows = 0;
  for (const auto& d : deltas) {
    if (!not_own(d)) continue;
    calls += double(d.delta.calls);
    exec_ms += d.delta.total_exec_ms;
    nrows += double(d.delta.rows);
    metrics_.ObserveStatementMean(d.mean_exec_ms() / 1000.0);
  }
  metrics_.AddStatementTotals(calls, exec_ms / 1000.0, nrows);

  auto build = [&](const std::vector<const StatementDelta*>& sorted) {
    std::vector<TopStatement> out;
    for (const auto* d : sorted) {
      if (out.size() >= top_n) break;
      if (!not_own(*d)) continue;
      TopStatement t{d->key, d->delta, d->datname, d->usename, std::nullopt};
      if (const QueryText* text = CachedTextFor(d->key.queryid)) t.text = *text;
      out.push_back(std::move(t));
    }
    return out;
  };
  top_by_time_ = build(by_time);
  top_by_calls_ = build(by_calls);
  std::vector<TopStatementLabel> labels;
  for (const auto& t : top_by_time_) {
    if (t.text) {
      // Labels carry obfuscated text only, whatever /queries shows; none means none.
      std::string query;
      if (settings_.query_text == QueryTextMode::kObfuscated) query = t.text->text;
      if (settings_.query_text == QueryTextMode::kRaw) query = ObfuscateQuery(t.text->text);
      labels.push_back({t.text->fingerprint, t.delta.total_exec_ms / 1000.0, double(t.delta.calls),
                        std::move(query)});
    }
  }
  metrics_.SetTopStatements(labels);

  if (window_start) {
    HistoryWindow w;
    w.start = *window_start;
    w.end = now;
    w.evictions = evictions;
    w.new_statements = diff.new_keys;
    w.statements.reserve(by_time.size());
    for (const auto* d : by_time) w.statements.push_back({IdentityFor(*d), d->delta});
    history_.Add(std::move(w));
    // Identities no window refers to any more (only this map holds them) go.
    std::erase_if(identities_, [](const auto& kv) { return kv.second.use_count() == 1; });
    history_bytes_ = history_.ApproxBytes();
  }

  if (text_error) {
    SamplerRunResult f = Fail(r, *text_error);
    f.message = "reading pg_stat_statements texts failed: " + text_error->message;
    return finish(f);
  }
  r.status = CollectorStatus::kOk;
  return finish(r);
}

}  // namespace pgvigil
