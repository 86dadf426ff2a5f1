#include "sampling/query_sampling.hpp"

#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "sampling/activity_sampler.hpp"

namespace pgvigil {

TEST_CASE("QuerySampling publishes JSON before the first run", "[json]") {
  prometheus::Registry registry;
  SamplingSettings settings;
  settings.query_text = QueryTextMode::kNone;
  QuerySampling sampling(settings, registry);
  auto q = nlohmann::json::parse(sampling.QueriesJson());
  CHECK(q["enabled"] == true);
  CHECK(q["query_text"] == "none");
  CHECK(q["statements"]["status"] == "pending");
  CHECK(q["statements"]["interval_seconds"] == 60);
  CHECK(q["statements"]["top_by_time"].empty());
  CHECK(q["activity"]["status"] == "pending");
  CHECK(q["activity"]["interval_seconds"] == 15);
  CHECK(q["activity"]["slow_threshold_seconds"] == 1);
  CHECK(q["activity"]["samples"].empty());
  auto s = nlohmann::json::parse(sampling.StatusJson());
  CHECK(s["statements"]["status"] == "pending");
  CHECK(s["activity"]["last_success"].is_null());
}

TEST_CASE("QuerySampling JSON snapshots can be read from other threads", "[json]") {
  prometheus::Registry registry;
  QuerySampling sampling(SamplingSettings{}, registry);
  int empty_queries = 0;  // counted, not CHECKed, in the thread: Catch2 is not thread-safe
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) empty_queries += sampling.QueriesJson().empty() ? 1 : 0;
  });
  for (int i = 0; i < 200; ++i) CHECK_FALSE(sampling.StatusJson().empty());
  reader.join();
  CHECK(empty_queries == 0);
}

TEST_CASE("Disabled sampling reports disabled", "[json]") {
  prometheus::Registry registry;
  SamplingSettings settings;
  settings.enabled = false;
  QuerySampling sampling(settings, registry);
  auto s = nlohmann::json::parse(sampling.StatusJson());
  CHECK(s["enabled"] == false);
  CHECK(s["statements"]["status"] == "disabled");
  CHECK(s["activity"]["status"] == "disabled");
}

TEST_CASE("Activity SQL is tagged, bounded and pooler-safe", "[json]") {
  std::string sql = ActivitySql();
  CHECK(sql.rfind("/* pgvigil */", 0) == 0);
  CHECK(sql.find("LIMIT $3") != std::string::npos);
  CHECK(sql.find("pg_backend_pid()") != std::string::npos);
  CHECK(sql.find(';') == std::string::npos);
  CHECK(sql.find("SET ") == std::string::npos);
}

}  // namespace pgvigil
