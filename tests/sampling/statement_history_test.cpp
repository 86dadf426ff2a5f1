#include "sampling/statement_history.hpp"

#include <catch2/catch.hpp>
#include <chrono>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

const SystemTime kT0 = SystemTime(std::chrono::seconds(1'767'225'600));  // 2026-01-01T00:00:00Z

std::shared_ptr<const StatementIdentity> Who(std::int64_t queryid, const char* text = nullptr) {
  auto w = std::make_shared<StatementIdentity>();
  w->key = StatementKey{10, 5, queryid, true};
  w->datname = "app";
  w->usename = "web";
  if (text != nullptr) w->text = QueryText{text, "fp" + std::to_string(queryid), false};
  return w;
}

StatementCounters Counters(std::int64_t calls, double ms, std::int64_t rows, std::int64_t hit = 0,
                           std::int64_t read = 0) {
  StatementCounters c;
  c.calls = calls;
  c.total_exec_ms = ms;
  c.rows = rows;
  c.shared_blks_hit = hit;
  c.shared_blks_read = read;
  return c;
}

HistoryWindow Window(SystemTime start, SystemTime end, std::vector<WindowStatement> s) {
  HistoryWindow w;
  w.start = start;
  w.end = end;
  w.statements = std::move(s);
  return w;
}

std::optional<QueriesRequest> Parse(std::multimap<std::string, std::string> p, std::string* err) {
  return ParseQueriesRequest(p, 20, 1h, kT0 + 2h, err);
}

}  // namespace

TEST_CASE("History aggregates windows by statement over the requested window", "[history]") {
  StatementHistory h(1h);
  auto a = Who(1, "SELECT a FROM t WHERE x = ?");
  auto b = Who(2, "SELECT b");
  h.Add(Window(kT0, kT0 + 1min, {{a, Counters(10, 100, 10, 90, 10)}, {b, Counters(1, 500, 0)}}));
  h.Add(Window(kT0 + 1min, kT0 + 2min, {{a, Counters(30, 60, 30, 10, 0)}}));
  h.Add(Window(kT0 + 2min, kT0 + 3min, {{b, Counters(2, 10, 4)}}));
  auto snap = h.Snapshot();
  REQUIRE(snap->windows.size() == 3);

  QueriesRequest q;
  q.window = 15min;
  auto j = AggregateHistory(*snap, q, kT0 + 3min, QueryTextMode::kObfuscated);
  CHECK(j["windows"] == 3);
  CHECK(j["totals"]["calls"] == 43);
  CHECK(j["totals"]["statements"] == 2);
  REQUIRE(j["statements"].size() == 2);
  const auto& first = j["statements"][0];  // sort=time: b has 510 ms, a 160 ms
  CHECK(first["queryid"] == "2");
  CHECK(first["calls"] == 3);
  CHECK(first["total_exec_seconds"] == Approx(0.51));
  CHECK(first["mean_exec_seconds"] == Approx(0.17));
  CHECK(first["shared_hit_ratio"].is_null());  // touched no block
  CHECK(first["first_seen"] == "2026-01-01T00:00:00.000Z");
  CHECK(first["last_seen"] == "2026-01-01T00:03:00.000Z");
  const auto& second = j["statements"][1];
  CHECK(second["query"] == "SELECT a FROM t WHERE x = ?");
  CHECK(second["fingerprint"] == "fp1");
  CHECK(second["calls"] == 40);
  CHECK(second["rows"] == 40);
  CHECK(second["shared_hit_ratio"] == Approx(100.0 / 110.0));
  CHECK(second["last_seen"] == "2026-01-01T00:02:00.000Z");
  CHECK(j["complete"] == true);

  SECTION("sort and limit") {
    q.sort = QueriesSort::kCalls;
    q.limit = 1;
    auto c = AggregateHistory(*snap, q, kT0 + 3min, QueryTextMode::kObfuscated);
    REQUIRE(c["statements"].size() == 1);
    CHECK(c["statements"][0]["queryid"] == "1");
    CHECK(c["totals"]["calls"] == 43);  // totals cover everything, not just the limit
    q.sort = QueriesSort::kMean;
    CHECK(AggregateHistory(*snap, q, kT0 + 3min,
                           QueryTextMode::kObfuscated)["statements"][0]["queryid"] == "2");
    q.sort = QueriesSort::kRows;
    CHECK(AggregateHistory(*snap, q, kT0 + 3min,
                           QueryTextMode::kObfuscated)["statements"][0]["queryid"] == "1");
  }
  SECTION("a shorter window leaves older windows out") {
    q.window = 90s;  // from 00:01:30: the windows ending at 00:02 and 00:03
    auto c = AggregateHistory(*snap, q, kT0 + 3min, QueryTextMode::kObfuscated);
    CHECK(c["windows"] == 2);
    CHECK(c["totals"]["calls"] == 32);
  }
  SECTION("since") {
    q.since = kT0 + 150s;
    auto c = AggregateHistory(*snap, q, kT0 + 3min, QueryTextMode::kObfuscated);
    CHECK(c["windows"] == 1);
    CHECK(c["totals"]["calls"] == 2);
  }
  SECTION("query_text = none shows no text") {
    auto c = AggregateHistory(*snap, q, kT0 + 3min, QueryTextMode::kNone);
    CHECK_FALSE(c["statements"][1].contains("query"));
    CHECK(c["statements"][1]["fingerprint"] == "fp1");
  }
}

TEST_CASE("History reports evictions and keeps a text learnt later", "[history]") {
  StatementHistory h(1h);
  HistoryWindow w = Window(kT0, kT0 + 1min, {{Who(7), Counters(5, 5, 5)}});
  w.evictions = 3;
  h.Add(std::move(w));
  h.Add(Window(kT0 + 1min, kT0 + 2min, {{Who(7, "SELECT seven"), Counters(1, 1, 1)}}));
  h.Add(Window(kT0 + 2min, kT0 + 3min, {{Who(7), Counters(1, 1, 1)}}));
  auto j = AggregateHistory(*h.Snapshot(), QueriesRequest{}, kT0 + 3min, QueryTextMode::kRaw);
  CHECK(j["evictions"] == 3);
  CHECK(j["complete"] == false);
  REQUIRE(j["statements"].size() == 1);
  CHECK(j["statements"][0]["query"] == "SELECT seven");
  CHECK(j["statements"][0]["calls"] == 7);
}

TEST_CASE("History is bounded by retention and by rows", "[history]") {
  StatementHistory h(10min, /*max_entries=*/25);
  auto who = Who(1);
  for (int i = 0; i < 30; ++i) {
    h.Add(Window(kT0 + i * 1min, kT0 + (i + 1) * 1min, {{who, Counters(1, 1, 1)}}));
  }
  CHECK(h.windows() == 10);  // 10 minutes of 1-minute windows
  CHECK(h.entries() == 10);
  CHECK_FALSE(h.Snapshot()->capped);
  std::vector<WindowStatement> many;
  for (int i = 0; i < 20; ++i) many.push_back({Who(100 + i), Counters(1, 1, 1)});
  h.Add(Window(kT0 + 30min, kT0 + 31min, many));
  CHECK(h.entries() <= 25);
  CHECK(h.Snapshot()->capped);
  // A snapshot taken earlier is unaffected by later changes.
  auto before = h.Snapshot();
  const auto n = before->windows.size();
  h.Clear();
  CHECK(before->windows.size() == n);
  CHECK(h.windows() == 0);
  CHECK(h.ApproxBytes() == 0);
}

TEST_CASE("Query parameters are checked with clear messages", "[history]") {
  std::string err;
  auto q = Parse({}, &err);
  REQUIRE(q);
  CHECK(q->window == 15min);
  CHECK(q->limit == 20);
  CHECK(q->sort == QueriesSort::kTime);

  q = Parse({{"window", "10m"}, {"limit", "5"}, {"sort", "mean"}}, &err);
  REQUIRE(q);
  CHECK(q->window == 10min);
  CHECK(q->limit == 5);
  CHECK(q->sort == QueriesSort::kMean);

  q = Parse({{"since", "2026-01-01T01:30:00Z"}}, &err);
  REQUIRE(q);
  CHECK(*q->since == kT0 + 90min);
  q = Parse({{"since", "2026-01-01T02:30:00.5+02:00"}}, &err);
  REQUIRE(q);
  CHECK(*q->since == kT0 + 30min + 500ms);
  q = Parse({{"since", "1767225660"}}, &err);
  REQUIRE(q);
  CHECK(*q->since == kT0 + 1min);

  struct Bad {
    std::multimap<std::string, std::string> params;
    const char* fragment;
  };
  const Bad bad[] = {
      {{{"window", "15"}}, "window: \"15\" is not a positive duration"},
      {{{"window", "0s"}}, "window: \"0s\" is not a positive duration"},
      {{{"window", "2h"}}, "longer than the history kept (1h, sampling.history)"},
      {{{"limit", "0"}}, "limit: \"0\" is not an integer in 1..1000"},
      {{{"limit", "abc"}}, "limit: \"abc\""},
      {{{"limit", "1001"}}, "1..1000"},
      {{{"sort", "speed"}}, "sort: \"speed\" is not allowed; allowed time, calls, mean, rows"},
      {{{"since", "yesterday"}}, "since: \"yesterday\" is not a timestamp; use RFC 3339"},
      {{{"since", "2026-13-01T00:00:00Z"}}, "is not a timestamp"},
      {{{"since", "2030-01-01T00:00:00Z"}}, "is in the future"},
      {{{"window", "1m"}, {"since", "1767225660"}}, "give one of them, not both"},
      {{{"windw", "1m"}}, "unknown parameter \"windw\"; allowed window, since, limit, sort"},
      {{{"sort", std::string(500, 'x') + "\xff"}}, "is not allowed"},
  };
  for (const Bad& b : bad) {
    err.clear();
    INFO(b.fragment);
    CHECK_FALSE(Parse(b.params, &err));
    CHECK_THAT(err, Catch::Contains(b.fragment));
    CHECK(err.size() < 300);  // echoed values are cut
    CHECK(err.find('\xff') == std::string::npos);
  }
}

}  // namespace pgvigil
