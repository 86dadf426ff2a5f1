#include "telemetry/metrics.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "telemetry/process_metrics.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;

namespace {

// The value of the sample whose name+labels are exactly `series`, e.g. `pg_up` or
// `pgvigil_probes_total{outcome="ok"}`.
std::optional<double> Value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

ProbeResult Ok(std::chrono::nanoseconds latency) {
  ProbeResult r;
  r.ok = true;
  r.latency = latency;
  r.at = std::chrono::system_clock::now();
  return r;
}

ProbeResult Failed(ErrorKind kind) {
  ProbeResult r;
  r.ok = false;
  r.latency = 2s;
  r.at = std::chrono::system_clock::now();
  r.error = DbError{kind, "", "boom"};
  return r;
}

struct CommandResult {
  int status;
  std::string output;
};

CommandResult RunWithInput(const std::string& command, const std::string& input) {
  char path[] = "/tmp/pgvigil-metrics-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << input;
  const std::string cmd = command + " < " + path + " 2>&1";
  CommandResult result{-1, ""};
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) result.output.append(buf, n);
    result.status = pclose(p);
  }
  unlink(path);
  return result;
}

}  // namespace

TEST_CASE("fresh registry exposes every family with zeros") {
  AgentMetrics m("1.2.3");
  const auto text = m.Serialize();
  CHECK(Value(text, "pg_up") == 0);
  CHECK(Value(text, "pgvigil_db_state{state=\"starting\"}") == 1);
  CHECK(Value(text, "pgvigil_db_state{state=\"up\"}") == 0);
  CHECK(Value(text, "pgvigil_probes_total{outcome=\"ok\"}") == 0);
  CHECK(Value(text, "pgvigil_probes_total{outcome=\"timeout\"}") == 0);
  CHECK(Value(text, "pgvigil_pool_connections_closed_total{pool=\"main\",reason=\"lifetime\"}") ==
        0);
  CHECK(Value(text, "pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"auth\"}") == 0);
  CHECK(Value(text, "pgvigil_build_info{version=\"1.2.3\"}") == 1);
  CHECK(Value(text, "pgvigil_probe_duration_seconds_count") == 0);
  CHECK(Value(text, "pgvigil_connect_duration_seconds_bucket{le=\"30\"}") == 0);
  CHECK(Value(text, "pgvigil_state_changes_total") == 0);
  CHECK(Value(text, "pgvigil_last_probe_timestamp_seconds") == 0);
}

TEST_CASE("RecordProbe and SetState update the probe metrics") {
  AgentMetrics m("test");
  auto ok = Ok(3ms);
  ok.new_connection = true;
  ok.connect_duration = 1500ms;
  m.RecordProbe(ok);
  m.SetState(DbState::kUp, true);
  auto text = m.Serialize();
  CHECK(Value(text, "pg_up") == 1);
  CHECK(Value(text, "pgvigil_probes_total{outcome=\"ok\"}") == 1);
  CHECK(Value(text, "pgvigil_probe_duration_seconds_count") == 1);
  CHECK(Value(text, "pgvigil_probe_duration_seconds_sum") == Approx(0.003));
  CHECK(Value(text, "pgvigil_probe_duration_seconds_bucket{le=\"0.0025\"}") == 0);
  CHECK(Value(text, "pgvigil_probe_duration_seconds_bucket{le=\"0.005\"}") == 1);
  CHECK(Value(text, "pgvigil_connect_duration_seconds_bucket{le=\"1\"}") == 0);
  CHECK(Value(text, "pgvigil_connect_duration_seconds_bucket{le=\"2.5\"}") == 1);
  CHECK(Value(text, "pgvigil_db_state{state=\"up\"}") == 1);
  CHECK(Value(text, "pgvigil_db_state{state=\"starting\"}") == 0);
  CHECK(Value(text, "pgvigil_state_changes_total") == 1);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(*Value(text, "pgvigil_last_probe_timestamp_seconds") == Approx(now).margin(60));
  CHECK(Value(text, "pgvigil_last_success_timestamp_seconds") ==
        Value(text, "pgvigil_last_probe_timestamp_seconds"));

  m.RecordProbe(Failed(ErrorKind::kTimeout));
  m.RecordProbe(Failed(ErrorKind::kNeonQuota));  // not pre-created: appears on first use
  m.SetState(DbState::kDown, true);
  m.SetState(DbState::kDown, false);
  text = m.Serialize();
  CHECK(Value(text, "pg_up") == 0);
  CHECK(Value(text, "pgvigil_probes_total{outcome=\"timeout\"}") == 1);
  CHECK(Value(text, "pgvigil_probes_total{outcome=\"neon_quota\"}") == 1);
  CHECK(Value(text, "pgvigil_probe_duration_seconds_count") == 1);  // failures not observed
  CHECK(Value(text, "pgvigil_db_state{state=\"down\"}") == 1);
  CHECK(Value(text, "pgvigil_db_state{state=\"up\"}") == 0);
  CHECK(Value(text, "pgvigil_state_changes_total") == 2);
  CHECK(*Value(text, "pgvigil_last_probe_timestamp_seconds") >=
        *Value(text, "pgvigil_last_success_timestamp_seconds"));
}

TEST_CASE("UpdatePool sets gauges and advances counters by the delta") {
  AgentMetrics m("test");
  PoolStats s;
  s.max_size = 2;
  s.open = 2;
  s.idle = 1;
  s.busy = 1;
  s.opened_total = 3;
  s.closed_total = {{"idle", 1}};
  s.connect_errors_total = {{"refused", 2}};
  m.UpdatePool(s);
  m.UpdatePool(s);  // same totals again: no double counting
  auto text = m.Serialize();
  CHECK(Value(text, "pgvigil_pool_connections{pool=\"main\",state=\"idle\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_connections{pool=\"main\",state=\"busy\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_max_connections{pool=\"main\"}") == 2);
  CHECK(Value(text, "pgvigil_pool_connections_opened_total{pool=\"main\"}") == 3);
  CHECK(Value(text, "pgvigil_pool_connections_closed_total{pool=\"main\",reason=\"idle\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"refused\"}") == 2);

  s.opened_total = 5;
  s.closed_total = {{"idle", 1}, {"broken", 1}};
  s.connect_errors_total = {{"refused", 2}, {"neon_sni", 1}};
  s.busy = 0;
  m.UpdatePool(s);
  text = m.Serialize();
  CHECK(Value(text, "pgvigil_pool_connections{pool=\"main\",state=\"busy\"}") == 0);
  CHECK(Value(text, "pgvigil_pool_connections_opened_total{pool=\"main\"}") == 5);
  CHECK(Value(text, "pgvigil_pool_connections_closed_total{pool=\"main\",reason=\"broken\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_connect_errors_total{pool=\"main\",reason=\"neon_sni\"}") == 1);

  // A recreated pool starts from zero: its totals are all new, counters never go down.
  PoolStats fresh;
  fresh.opened_total = 1;
  m.UpdatePool(fresh);
  text = m.Serialize();
  CHECK(Value(text, "pgvigil_pool_connections_opened_total{pool=\"main\"}") == 6);

  // The sampling pool (neon.sampling_url): the same families with pool="sampling", and its own
  // older families, counted apart from the main pool.
  PoolStats sampling;
  sampling.max_size = 1;
  sampling.open = sampling.idle = 1;
  sampling.opened_total = 2;
  sampling.connect_errors_total = {{"auth", 1}};
  m.UpdateSamplingPool(sampling);
  m.UpdateSamplingPool(sampling);
  text = m.Serialize();
  CHECK(Value(text, "pgvigil_pool_connections{pool=\"sampling\",state=\"idle\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_max_connections{pool=\"sampling\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_connections_opened_total{pool=\"sampling\"}") == 2);
  CHECK(Value(text, "pgvigil_pool_connect_errors_total{pool=\"sampling\",reason=\"auth\"}") == 1);
  CHECK(Value(text, "pgvigil_sampling_pool_connections") == 1);
  CHECK(Value(text, "pgvigil_sampling_pool_connections_opened_total") == 2);
  CHECK(Value(text, "pgvigil_sampling_pool_connect_errors_total{reason=\"auth\"}") == 1);
  CHECK(Value(text, "pgvigil_pool_connections_opened_total{pool=\"main\"}") == 6);
}

TEST_CASE("process metrics are present and plausible") {
  AgentMetrics m("test");
  const auto text = m.Serialize();
  CHECK(text.find("# TYPE process_cpu_seconds_total counter") != std::string::npos);
  CHECK(*Value(text, "process_cpu_seconds_total") >= 0);
  CHECK(*Value(text, "process_resident_memory_bytes") > 1e5);
  CHECK(*Value(text, "process_virtual_memory_bytes") >=
        *Value(text, "process_resident_memory_bytes"));
  CHECK(*Value(text, "process_open_fds") >= 3);
  CHECK(*Value(text, "process_max_fds") >= *Value(text, "process_open_fds"));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(*Value(text, "process_start_time_seconds") <= now + 1);
  CHECK(*Value(text, "process_start_time_seconds") > now - 3600);
}

TEST_CASE("proc parsers handle odd command names and limits") {
  const std::string stat =
      "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 "
      "98765 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  auto st = ParseProcStat(stat, 100);
  REQUIRE(st);
  CHECK(st->cpu_seconds == Approx(3.0));
  CHECK(st->start_time_ticks == Approx(98765));
  CHECK_FALSE(ParseProcStat("garbage", 100));
  CHECK_FALSE(ParseProcStat("1 (x) S 1 2", 100));

  const std::string limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max open files            1024                 524288               files     \n";
  CHECK(ParseMaxOpenFiles(limits) == 1024);
  CHECK(ParseMaxOpenFiles("Max open files            unlimited            unlimited  files\n") ==
        -1);
  CHECK_FALSE(ParseMaxOpenFiles("nothing here\n"));
}

TEST_CASE("exposition passes promtool check metrics") {
  AgentMetrics m("0.1.0");
  m.RecordProbe(Ok(2ms));
  m.RecordProbe(Failed(ErrorKind::kRefused));
  m.SetState(DbState::kDegraded, true);
  PoolStats s;
  s.max_size = 1;
  s.opened_total = 1;
  s.closed_total = {{"lifetime", 1}};
  m.UpdatePool(s);
  const auto text = m.Serialize();
  const auto r = RunWithInput("/usr/bin/promtool check metrics", text);
  INFO(r.output);
  INFO(text);
  CHECK(r.status == 0);
  CHECK(r.output.empty());
}

TEST_CASE("label values that are not UTF-8 are repaired in the exposition") {
  AgentMetrics m("1.0.0");
  prometheus::BuildGauge()
      .Name("pgvigil_test_names")
      .Help("test")
      .Register(m.registry())
      .Add({{"datname", "caf\xE9"}})
      .Set(1);
  const std::string text = m.Serialize();
  CHECK(text.find("pgvigil_test_names{datname=\"caf\xEF\xBF\xBD\"} 1") != std::string::npos);
  CHECK(text.find("caf\xE9") == std::string::npos);
}
