#include "sampling/statement_diff.hpp"

#include <catch2/catch.hpp>

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

TEST_CASE("First sample and new keys only set baselines", "[diff]") {
  StatementDiffer d;
  auto first = d.Apply(kEpoch, {Row(1, 10, 5.0)});
  CHECK(first.first_sample);
  CHECK(first.deltas.empty());
  auto second = d.Apply(kEpoch, {Row(1, 15, 7.5), Row(2, 1000, 1e6)});
  CHECK_FALSE(second.first_sample);
  REQUIRE(second.deltas.size() == 1);
  CHECK(second.deltas[0].key.queryid == 1);
  CHECK(second.deltas[0].delta.calls == 5);
  CHECK(second.deltas[0].delta.total_exec_ms == Approx(2.5));
  CHECK(second.deltas[0].delta.rows == 10);
  CHECK(second.deltas[0].mean_exec_ms() == Approx(0.5));
  CHECK(second.new_keys == 1);
  auto third = d.Apply(kEpoch, {Row(1, 15, 7.5), Row(2, 1001, 1e6 + 1)});
  REQUIRE(third.deltas.size() == 1);  // queryid 1 did not run: dropped
  CHECK(third.deltas[0].key.queryid == 2);
  CHECK(third.deltas[0].delta.calls == 1);
}

TEST_CASE("Resets re-baseline instead of producing negative or huge deltas", "[diff]") {
  StatementDiffer d;
  d.Apply(kEpoch, {Row(1, 100, 50), Row(2, 100, 50), Row(3, 5, 1, "100")});

  SECTION("counter went backwards") {
    auto o = d.Apply(kEpoch, {Row(1, 3, 1), Row(2, 110, 60), Row(3, 6, 2, "100")});
    CHECK(o.reset_keys == 1);
    REQUIRE(o.deltas.size() == 2);
    for (const auto& delta : o.deltas) CHECK(delta.delta.calls >= 0);
    auto next = d.Apply(kEpoch, {Row(1, 4, 2), Row(2, 110, 60), Row(3, 6, 2, "100")});
    REQUIRE(next.deltas.size() == 1);  // the new baseline of 1 is used from now on
    CHECK(next.deltas[0].delta.calls == 1);
  }
  SECTION("stats_since changed (PG17 per-entry reset)") {
    auto o = d.Apply(kEpoch, {Row(3, 500, 100, "200")});
    CHECK(o.deltas.empty());
    CHECK(o.reset_keys == 1);
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
