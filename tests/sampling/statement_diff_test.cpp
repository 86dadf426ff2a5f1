#include "sampling/statement_diff.hpp"

#include <catch2/catch.hpp>
#include <cmath>

namespace pgvigil {
namespace {

StatementRow Row(std::int64_t queryid, std::int64_t calls, double ms, std::string since = "") {
  StatementRow r;
  r.key = StatementKey{10, 5, queryid, true};
  r.counters.calls = calls;
  r.counters.total_exec_ms = ms;
  r.counters.rows = calls * 2;
  r.stats_since = std::move(since);
  return r;
}

const StatsEpoch kEpoch{"1700000000.5", "1700000001.25"};

}  // namespace

const StatementDelta* Find(const DiffOutcome& o, std::int64_t queryid) {
  for (const auto& d : o.deltas) {
    if (d.key.queryid == queryid) return &d;
  }
  return nullptr;
}

TEST_CASE("The first sample sets baselines; later new keys count from zero", "[diff]") {
  StatementDiffer d;
  auto first = d.Apply(kEpoch, {Row(1, 10, 5.0)});
  CHECK(first.first_sample);
  CHECK(first.deltas.empty());
  // Key 2 appeared after the first sample: all of its 50 calls happened in this window.
  auto second = d.Apply(kEpoch, {Row(1, 15, 7.5), Row(2, 50, 100)});
  CHECK_FALSE(second.first_sample);
  REQUIRE(second.deltas.size() == 2);
  const StatementDelta* one = Find(second, 1);
  REQUIRE(one != nullptr);
  CHECK(one->delta.calls == 5);
  CHECK(one->delta.total_exec_ms == Approx(2.5));
  CHECK(one->delta.rows == 10);
  CHECK(one->mean_exec_ms() == Approx(0.5));
  const StatementDelta* two = Find(second, 2);
  REQUIRE(two != nullptr);
  CHECK(two->delta.calls == 50);
  CHECK(two->delta.total_exec_ms == Approx(100));
  CHECK(two->delta.rows == 100);
  CHECK(second.new_keys == 1);
  auto third = d.Apply(kEpoch, {Row(1, 15, 7.5), Row(2, 51, 101)});
  REQUIRE(third.deltas.size() == 1);  // queryid 1 did not run: dropped
  CHECK(third.deltas[0].key.queryid == 2);
  CHECK(third.deltas[0].delta.calls == 1);
}

TEST_CASE("A new key whose stats_since predates the previous sample is a baseline", "[diff]") {
  StatementDiffer d;
  d.Apply(kEpoch, {Row(1, 10, 5.0, "1000")}, 2000.0);
  // Key 2 existed since t=1500 (< 2000, the previous sample) but was not read then: its
  // counters include calls from before the window, so they only set its baseline.
  // Key 3 was created at t=2500, after the previous sample: counted from zero.
  auto o = d.Apply(kEpoch, {Row(1, 10, 5.0, "1000"), Row(2, 70, 9, "1500"), Row(3, 4, 1, "2500")},
                   3000.0);
  CHECK(o.predating_keys == 1);
  CHECK(o.new_keys == 1);
  REQUIRE(o.deltas.size() == 1);
  CHECK(o.deltas[0].key.queryid == 3);
  CHECK(o.deltas[0].delta.calls == 4);
  auto next = d.Apply(kEpoch, {Row(2, 72, 10, "1500")}, 4000.0);
  REQUIRE(next.deltas.size() == 1);
  CHECK(next.deltas[0].delta.calls == 2);
}

TEST_CASE("Garbage counters of a new key are never counted", "[diff]") {
  StatementDiffer d;
  d.Apply(kEpoch, {});
  StatementRow bad = Row(9, 5, -1.0);
  StatementRow nan = Row(10, 5, std::nan(""));
  StatementRow idle = Row(11, 0, 0);
  auto o = d.Apply(kEpoch, {bad, nan, idle});
  CHECK(o.deltas.empty());
}

TEST_CASE("Resets re-baseline instead of producing negative or huge deltas", "[diff]") {
  StatementDiffer d;
  d.Apply(kEpoch, {Row(1, 100, 50), Row(2, 100, 50), Row(3, 5, 1, "100")});

  SECTION("counter went backwards: the entry restarted, its counts since then are new") {
    auto o = d.Apply(kEpoch, {Row(1, 3, 1), Row(2, 110, 60), Row(3, 6, 2, "100")});
    CHECK(o.reset_keys == 1);
    REQUIRE(o.deltas.size() == 3);
    for (const auto& delta : o.deltas) CHECK(delta.delta.calls >= 0);
    REQUIRE(Find(o, 1) != nullptr);
    CHECK(Find(o, 1)->delta.calls == 3);
    auto next = d.Apply(kEpoch, {Row(1, 4, 2), Row(2, 110, 60), Row(3, 6, 2, "100")});
    REQUIRE(next.deltas.size() == 1);  // the new baseline of 1 is used from now on
    CHECK(next.deltas[0].delta.calls == 1);
  }
  SECTION("stats_since changed (PG17 per-entry reset): counts since the reset") {
    auto o = d.Apply(kEpoch, {Row(3, 7, 3, "200")});
    CHECK(o.reset_keys == 1);
    REQUIRE(o.deltas.size() == 1);
    CHECK(o.deltas[0].delta.calls == 7);
    CHECK(o.deltas[0].delta.total_exec_ms == Approx(3));
  }
  SECTION("stats_reset changed") {
    StatsEpoch e = kEpoch;
    e.stats_reset = "1700009999";
    auto o = d.Apply(e, {Row(1, 200, 100), Row(2, 300, 100)});
    CHECK(o.epoch_changed);
    CHECK(o.deltas.empty());
    auto next = d.Apply(e, {Row(1, 201, 101)});
    REQUIRE(next.deltas.size() == 1);
    CHECK(next.deltas[0].delta.calls == 1);
  }
  SECTION("postmaster restarted (Neon suspend)") {
    StatsEpoch e = kEpoch;
    e.postmaster_start = "1700005555";
    auto o = d.Apply(e, {Row(1, 150, 100)});
    CHECK(o.epoch_changed);
    CHECK(o.deltas.empty());
  }
  SECTION("Clear starts over") {
    d.Clear();
    auto o = d.Apply(kEpoch, {Row(1, 150, 100)});
    CHECK(o.first_sample);
    CHECK(o.deltas.empty());
  }
}

}  // namespace pgvigil
