// telemetry/series: the one reset rule and the two series shapes.
#include "telemetry/series.hpp"

#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <sstream>

namespace pgvigil {
namespace {

std::string Text(const prometheus::Registry& r) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, r.Collect());
  return out.str();
}

TEST_CASE("CounterGrowth: a decrease is a reset, the new reading is all growth", "[telemetry]") {
  CHECK(CounterGrowth(std::nullopt, 7) == 7);
  CHECK(CounterGrowth(5.0, 7) == 2);
  CHECK(CounterGrowth(7.0, 7) == 0);
  CHECK(CounterGrowth(7.0, 3) == 3);
}

TEST_CASE("CumulativeCounter: accumulate survives resets, follow-source restarts the series",
          "[telemetry]") {
  prometheus::Registry r;
  using P = CumulativeCounter::Presentation;
  CumulativeCounter acc(r, "acc_total", "h", P::kAccumulate);
  CumulativeCounter follow(r, "follow_total", "h", P::kFollowSource);
  CHECK(Text(r).find("acc_total 0") != std::string::npos);   // exists from the start
  CHECK(Text(r).find("follow_total") == std::string::npos);  // from the first reading
  for (double v : {10.0, 15.0, 4.0, 6.0, -1.0}) {
    acc.Observe(v);
    follow.Observe(v);
  }
  const std::string text = Text(r);
  CHECK(text.find("acc_total 21") != std::string::npos);    // 10 + 5 + 4 + 2
  CHECK(text.find("follow_total 6") != std::string::npos);  // the source's value
  follow.Clear();
  acc.Clear();
  CHECK(Text(r).find("follow_total ") == std::string::npos);
  acc.Observe(8);  // baseline kept: +2
  CHECK(Text(r).find("acc_total 23") != std::string::npos);
}

TEST_CASE("SweptGauges: unreported sets go on Sweep, all on Clear", "[telemetry]") {
  prometheus::Registry r;
  SweptGauges g(r, "g", "h");
  g.Set({{"db", "a"}}, 1);
  g.Set({{"db", "b"}}, 2);
  g.Sweep();
  g.Set({{"db", "b"}}, 3);
  g.Sweep();
  std::string text = Text(r);
  CHECK(text.find("g{db=\"a\"}") == std::string::npos);
  CHECK(text.find("g{db=\"b\"} 3") != std::string::npos);
  g.Clear();
  CHECK(Text(r).find("g{db=") == std::string::npos);
}

}  // namespace
}  // namespace pgvigil
