#include "sampling/statement_history.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "util/time_format.hpp"

namespace pgvigil {
namespace {

constexpr std::size_t kMaxEchoedValue = 64;  // of a bad parameter, in an error message

std::string Quoted(const std::string& value) {
  return "\"" + CapQueryLength(SanitizeUtf8(value), kMaxEchoedValue) + "\"";
}

void Accumulate(StatementCounters& sum, const StatementCounters& d) {
  sum.calls += d.calls;
  sum.total_exec_ms += d.total_exec_ms;
  sum.rows += d.rows;
  sum.shared_blks_hit += d.shared_blks_hit;
  sum.shared_blks_read += d.shared_blks_read;
  sum.temp_blks_read += d.temp_blks_read;
  sum.temp_blks_written += d.temp_blks_written;
  sum.blk_read_ms += d.blk_read_ms;
}

double Mean(const StatementCounters& c) {
  return c.calls > 0 ? c.total_exec_ms / static_cast<double>(c.calls) : 0;
}

}  // namespace

StatementHistory::StatementHistory(Millis retention, std::size_t max_entries)
    : retention_(retention), max_entries_(std::max<std::size_t>(1, max_entries)) {}

void StatementHistory::Add(HistoryWindow window) {
  const SystemTime end = window.end;
  entries_ += window.statements.size();
  windows_.push_back(std::make_shared<const HistoryWindow>(std::move(window)));
  while (!windows_.empty() && windows_.front()->end + retention_ <= end) {
    entries_ -= windows_.front()->statements.size();
    windows_.pop_front();
  }
  capped_ = false;
  while (windows_.size() > 1 && entries_ > max_entries_) {
    entries_ -= windows_.front()->statements.size();
    windows_.pop_front();
    capped_ = true;
  }
}

void StatementHistory::Clear() {
  windows_.clear();
  entries_ = 0;
  capped_ = false;
}

std::shared_ptr<const HistorySnapshot> StatementHistory::Snapshot() const {
  auto s = std::make_shared<HistorySnapshot>();
  s->windows.assign(windows_.begin(), windows_.end());
  s->retention = retention_;
  s->capped = capped_;
  return s;
}

std::size_t StatementHistory::ApproxBytes() const {
  // make_shared puts the control block next to the object: about 16 bytes more than the object.
  constexpr std::size_t kShared = 16;
  std::size_t bytes = windows_.size() * (sizeof(HistoryWindow) + kShared);
  std::unordered_map<const StatementIdentity*, bool> seen;
  for (const auto& w : windows_) {
    bytes += w->statements.capacity() * sizeof(WindowStatement);
    for (const auto& s : w->statements) {
      if (!seen.emplace(s.who.get(), true).second) continue;
      bytes += sizeof(StatementIdentity) + kShared;
      auto heap = [](const std::string& str) {
        return str.capacity() > 15 ? str.capacity() + 1 : 0;  // past the small-string buffer
      };
      bytes += heap(s.who->datname) + heap(s.who->usename);
      if (s.who->text) bytes += heap(s.who->text->text) + heap(s.who->text->fingerprint);
    }
  }
  return bytes;
}

const char* QueriesSortName(QueriesSort s) {
  switch (s) {
    case QueriesSort::kTime:
      return "time";
    case QueriesSort::kCalls:
      return "calls";
    case QueriesSort::kMean:
      return "mean";
    case QueriesSort::kRows:
      return "rows";
  }
  return "time";
}

std::optional<SystemTime> ParseTimestamp(const std::string& text) {
  using namespace std::chrono;
  if (text.empty()) return std::nullopt;
  if (text.find('-') == std::string::npos || text.size() < 20) {  // Unix seconds
    double v = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v) || v < 0 ||
        v > 32503680000.0) {  // year 3000
      return std::nullopt;
    }
    return SystemTime(duration_cast<SystemTime::duration>(duration<double>(v)));
  }
  // A '+' of the offset arrives as ' ' in a query string unless the client encoded it.
  std::string t = text;
  if (const auto sp = t.rfind(' '); sp != std::string::npos && sp > 10) t[sp] = '+';
  return ParseRfc3339(t);
}

std::optional<QueriesRequest> ParseQueriesRequest(
    const std::multimap<std::string, std::string>& params, int default_limit, Millis retention,
    SystemTime now, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<QueriesRequest> {
    if (error != nullptr) *error = std::move(msg);
    return std::nullopt;
  };
  QueriesRequest q;
  q.limit = std::clamp(default_limit, 1, kMaxQueriesLimit);
  q.window = std::min(q.window, retention);
  bool window_given = false;
  for (const auto& [key, value] : params) {
    if (key == "window") {
      std::string why;
      auto d = ParseDuration(value, &why);
      if (!d || d->count() <= 0) {
        return fail("window: " + Quoted(value) +
                    " is not a positive duration; use e.g. window=15m, window=1h, window=90s");
      }
      if (*d > retention) {
        return fail("window: " + Quoted(value) + " is longer than the history kept (" +
                    FormatDuration(retention) +
                    ", sampling.history); ask for less or raise sampling.history");
      }
      q.window = *d;
      window_given = true;
    } else if (key == "since") {
      auto t = ParseTimestamp(value);
      if (!t) {
        return fail("since: " + Quoted(value) +
                    " is not a timestamp; use RFC 3339 (e.g. since=2026-01-02T03:04:05Z) or Unix "
                    "seconds (e.g. since=1767323045)");
      }
      if (*t > now) {
        return fail("since: " + Quoted(value) + " is in the future (now is " +
                    FormatRfc3339Utc(now, 0) + ")");
      }
      q.since = *t;
    } else if (key == "limit") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 ||
          n > kMaxQueriesLimit) {
        return fail("limit: " + Quoted(value) + " is not an integer in 1.." +
                    std::to_string(kMaxQueriesLimit) + "; use e.g. limit=20");
      }
      q.limit = n;
    } else if (key == "sort") {
      if (value == "time") {
        q.sort = QueriesSort::kTime;
      } else if (value == "calls") {
        q.sort = QueriesSort::kCalls;
      } else if (value == "mean") {
        q.sort = QueriesSort::kMean;
      } else if (value == "rows") {
        q.sort = QueriesSort::kRows;
      } else {
        return fail("sort: " + Quoted(value) + " is not allowed; allowed time, calls, mean, rows");
      }
    } else {
      return fail("unknown parameter " + Quoted(key) +
                  "; allowed window, since, limit, sort (e.g. /queries?window=15m&sort=mean)");
    }
  }
  if (q.since && window_given) {
    return fail("window and since: give one of them, not both");
  }
  return q;
}

nlohmann::json AggregateHistory(const HistorySnapshot& history, const QueriesRequest& request,
                                SystemTime now, QueryTextMode mode) {
  struct Agg {
    std::shared_ptr<const StatementIdentity> who;
    StatementCounters sum;
    SystemTime first_seen;
    SystemTime last_seen;
  };
  const SystemTime from =
      request.since ? *request.since
                    : now - std::chrono::duration_cast<SystemTime::duration>(request.window);
  std::unordered_map<StatementKey, Agg, StatementKeyHash> by_key;
  StatementCounters totals;
  std::int64_t evictions = 0;
  int windows = 0;
  std::optional<SystemTime> covered_from, covered_to;
  for (const auto& w : history.windows) {
    if (w->end <= from) continue;
    ++windows;
    evictions += w->evictions;
    if (!covered_from || w->start < *covered_from) covered_from = w->start;
    if (!covered_to || w->end > *covered_to) covered_to = w->end;
    for (const auto& s : w->statements) {
      auto [it, fresh] = by_key.try_emplace(s.who->key);
      Agg& a = it->second;
      if (fresh) a.first_seen = w->start;
      // The newest identity wins, unless it has no text and an older one has.
      if (!a.who || s.who->text || !a.who->text) a.who = s.who;
      a.last_seen = w->end;
      Accumulate(a.sum, s.delta);
      Accumulate(totals, s.delta);
    }
  }
  std::vector<const Agg*> sorted;
  sorted.reserve(by_key.size());
  for (const auto& [key, a] : by_key) sorted.push_back(&a);
  auto metric = [&](const Agg* a) -> double {
    switch (request.sort) {
      case QueriesSort::kCalls:
        return static_cast<double>(a->sum.calls);
      case QueriesSort::kMean:
        return Mean(a->sum);
      case QueriesSort::kRows:
        return static_cast<double>(a->sum.rows);
      case QueriesSort::kTime:
        break;
    }
    return a->sum.total_exec_ms;
  };
  const std::size_t limit = static_cast<std::size_t>(std::max(1, request.limit));
  auto by_metric = [&](const Agg* a, const Agg* b) {
    const double ma = metric(a), mb = metric(b);
    if (ma != mb) return ma > mb;
    return a->who->key.queryid < b->who->key.queryid;  // stable answers for equal values
  };
  if (sorted.size() > limit) {
    std::partial_sort(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(limit),
                      sorted.end(), by_metric);
    sorted.resize(limit);
  } else {
    std::sort(sorted.begin(), sorted.end(), by_metric);
  }

  nlohmann::json list = nlohmann::json::array();
  for (const Agg* a : sorted) {
    const StatementIdentity& who = *a->who;
    nlohmann::json j;
    j["queryid"] = std::to_string(who.key.queryid);  // 64-bit: a string survives JavaScript
    j["database"] = who.datname;
    j["user"] = who.usename;
    j["toplevel"] = who.key.toplevel;
    j["fingerprint"] = who.text ? nlohmann::json(who.text->fingerprint) : nlohmann::json();
    if (mode != QueryTextMode::kNone) {
      j["query"] = who.text ? nlohmann::json(who.text->text) : nlohmann::json();
      j["query_truncated"] = who.text ? who.text->truncated : false;
    }
    const StatementCounters& c = a->sum;
    j["calls"] = c.calls;
    j["total_exec_seconds"] = c.total_exec_ms / 1000.0;
    j["mean_exec_seconds"] = Mean(c) / 1000.0;
    j["rows"] = c.rows;
    j["shared_blks_hit"] = c.shared_blks_hit;
    j["shared_blks_read"] = c.shared_blks_read;
    const std::int64_t touched = c.shared_blks_hit + c.shared_blks_read;
    j["shared_hit_ratio"] = touched > 0
                                ? nlohmann::json(static_cast<double>(c.shared_blks_hit) / touched)
                                : nlohmann::json();
    j["temp_blks_read"] = c.temp_blks_read;
    j["temp_blks_written"] = c.temp_blks_written;
    j["blk_read_seconds"] = c.blk_read_ms / 1000.0;
    j["first_seen"] = FormatRfc3339Utc(a->first_seen);
    j["last_seen"] = FormatRfc3339Utc(a->last_seen);
    list.push_back(std::move(j));
  }

  nlohmann::json out;
  out["from"] = FormatRfc3339Utc(from);
  out["to"] = FormatRfc3339Utc(now);
  out["seconds"] = std::chrono::duration<double>(now - from).count();
  out["covered_from"] = covered_from ? nlohmann::json(FormatRfc3339Utc(*covered_from)) : nullptr;
  out["covered_to"] = covered_to ? nlohmann::json(FormatRfc3339Utc(*covered_to)) : nullptr;
  out["windows"] = windows;
  out["sort"] = QueriesSortName(request.sort);
  out["limit"] = request.limit;
  out["history_seconds"] = std::chrono::duration<double>(history.retention).count();
  out["history_capped"] = history.capped;
  out["evictions"] = evictions;
  // An eviction may have dropped an entry's calls between two samples: the totals are a floor.
  out["complete"] = evictions == 0;
  nlohmann::json t;
  t["statements"] = by_key.size();
  t["calls"] = totals.calls;
  t["total_exec_seconds"] = totals.total_exec_ms / 1000.0;
  t["rows"] = totals.rows;
  out["totals"] = std::move(t);
  out["statements"] = std::move(list);
  return out;
}

}  // namespace pgvigil
