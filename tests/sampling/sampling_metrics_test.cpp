#include "sampling/sampling_metrics.hpp"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "support/pg_server.hpp"

namespace pgvigil {
namespace {

std::string Serialize(prometheus::Registry& r) {
  return prometheus::TextSerializer().Serialize(r.Collect());
}

}  // namespace

TEST_CASE("Sampling metrics accumulate deltas and stay bounded", "[metrics]") {
  prometheus::Registry registry;
  SamplingMetrics m(registry, 2);
  m.AddStatementTotals(50, 0.25, 100);
  m.AddStatementTotals(-5, -1, std::nan(""));  // garbage never moves a counter backwards
  CHECK(m.calls_total() == 50);
  CHECK(m.exec_seconds_total() == Approx(0.25));
  CHECK(m.rows_total() == 100);
  m.SetTopStatements({{"aaaaaaaaaaaaaaaa", 1.5, 10, "SELECT a"},
                      {"bbbbbbbbbbbbbbbb", 1, 5, "SELECT b"},
                      {"cccc", 0.5, 1, "SELECT c"}});
  CHECK(m.top_label_series() == 2);
  CHECK(m.top_info_series() == 2);
  CHECK(Serialize(registry).find(
            "pgvigil_top_statement_info{fingerprint=\"aaaaaaaaaaaaaaaa\",query=\"SELECT a\"} 1") !=
        std::string::npos);
  // Fingerprints that leave the top leave every family.
  m.SetTopStatements({{"dddddddddddddddd", 2, 1, "SELECT d FROM t WHERE x = ?"}});
  CHECK(m.top_label_series() == 1);
  CHECK(m.top_info_series() == 1);
  std::string text = Serialize(registry);
  CHECK(text.find("aaaaaaaaaaaaaaaa") == std::string::npos);
  CHECK(text.find("SELECT a") == std::string::npos);
  CHECK(text.find("pgvigil_top_statement_exec_seconds{fingerprint=\"dddddddddddddddd\"} 2") !=
        std::string::npos);
  CHECK(text.find("query=\"SELECT d FROM t WHERE x = ?\"} 1") != std::string::npos);
  CHECK(text.find("pgvigil_collector_errors_total{collector=\"statements\"} 0") !=
        std::string::npos);
  CHECK(text.find("pgvigil_collector_errors_total{collector=\"activity\"} 0") != std::string::npos);
}

TEST_CASE("ClearCurrent drops the last window, keeps the cumulative counters", "[metrics]") {
  prometheus::Registry registry;
  SamplingMetrics m(registry, 2);
  m.AddStatementTotals(50, 0.25, 100);
  m.SetLongRunning(3, 120);
  m.SetTopStatements({{"aaaaaaaaaaaaaaaa", 1.5, 10, "SELECT a"}});
  m.ClearCurrent();  // not the stats leader any more
  CHECK(m.top_label_series() == 0);
  CHECK(m.top_info_series() == 0);
  CHECK(m.long_running() == 0);
  CHECK(m.long_running_max_seconds() == 0);
  CHECK(m.calls_total() == 50);
  CHECK(Serialize(registry).find("aaaaaaaaaaaaaaaa") == std::string::npos);
}

TEST_CASE("The info metric's query label is valid UTF-8 cut at a fixed length", "[metrics]") {
  prometheus::Registry registry;
  SamplingMetrics m(registry, 10);
  std::string long_text = "SELECT caf\xC3\xA9, \xFF broken FROM t WHERE ";
  for (int i = 0; i < 100; ++i) long_text += "col" + std::to_string(i) + " = ? AND ";
  m.SetTopStatements({{"0123456789abcdef", 1, 1, long_text}});
  const std::string text = Serialize(registry);
  const auto start = text.find("query=\"");
  REQUIRE(start != std::string::npos);
  const auto end = text.find("\"} 1", start);
  REQUIRE(end != std::string::npos);
  const std::string label = text.substr(start + 7, end - start - 7);
  CHECK(label.size() <= kTopStatementQueryBytes);
  CHECK(label.size() > kTopStatementQueryBytes - 8);
  CHECK(label.find("caf\xC3\xA9") != std::string::npos);
  CHECK(label.find("\xFF") == std::string::npos);
  CHECK(label.substr(label.size() - 3) == "...");
}

TEST_CASE("Sampling metrics without opt-in labels have no per-statement series", "[metrics]") {
  prometheus::Registry registry;
  SamplingMetrics m(registry, 0);
  m.SetTopStatements({{"aaaaaaaaaaaaaaaa", 1.5, 10, "SELECT 1"}});
  CHECK(m.top_label_series() == 0);
  CHECK(Serialize(registry).find("fingerprint") == std::string::npos);
}

TEST_CASE("Sampling metrics pass promtool check metrics", "[metrics][promtool]") {
  prometheus::Registry registry;
  SamplingMetrics m(registry, 3);
  m.AddStatementTotals(3, 0.1, 4);
  m.ObserveStatementMean(0.002);
  m.SetStatementsAvailable(true);
  m.SetStatementsEntries(12, 5000);
  m.AddDealloc(2);
  m.SetLongRunning(1, 2.5);
  m.SetTopStatements({{"0123456789abcdef", 0.1, 3, "SELECT \"quoted\" FROM t WHERE a = ?\n"}});
  m.statements_collector().RecordSuccess(std::chrono::milliseconds(12));
  std::string path = "/tmp/pgvigil-sampling-metrics-" + std::to_string(::getpid()) + ".prom";
  {
    std::ofstream out(path);
    out << Serialize(registry);
  }
  std::string output;
  int rc = test::RunCommand("promtool check metrics < " + path + " 2>&1", &output);
  std::remove(path.c_str());
  INFO(output);
  CHECK(rc == 0);
}

}  // namespace pgvigil
