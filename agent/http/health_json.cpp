#include <cmath>
#include <nlohmann/json.hpp>

#include "http/server.hpp"
#include "util/time_format.hpp"
#include "version.hpp"

namespace pgvigil {

namespace {

using Json = nlohmann::ordered_json;

Json OptionalString(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }

Json OptionalTime(const std::optional<std::chrono::system_clock::time_point>& t) {
  return t ? Json(FormatRfc3339Utc(*t, 3)) : Json(nullptr);
}

Json CountsByKey(const std::map<std::string, std::uint64_t>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

Json InternalErrorsSection(const InternalErrors& e) {
  Json j;
  std::uint64_t total = 0;
  Json by = Json::object();
  for (const auto& [component, n] : e.by_component) {
    by[component] = n;
    total += n;
  }
  j["total"] = total;
  j["by_component"] = std::move(by);
  j["last"] = e.last.empty() ? Json(nullptr) : Json(e.last);
  j["last_at"] = e.last_at ? Json(FormatRfc3339Utc(*e.last_at)) : Json(nullptr);
  return j;
}

}  // namespace

std::string_view HealthStatusName(DbState s) {
  switch (s) {
    case DbState::kUp:
    case DbState::kIdle:
      return "ok";
    case DbState::kDegraded:
    case DbState::kStarting:
    case DbState::kWaking:
      return "degraded";
    case DbState::kDown:
    case DbState::kMisconfigured:
      return "unavailable";
  }
  return "unavailable";
}

std::string RenderHealthJson(const Snapshot& s, const Lifecycle& lifecycle, bool ready) {
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now() - lifecycle.started_at)
                          .count();
  Json db;
  db["state"] = DbStateName(s.state);
  db["usable"] = DbStateUsable(s.state);
  db["reason"] = s.reason.empty() ? Json(nullptr) : Json(s.reason);
  db["error_kind"] = OptionalString(s.error_kind);
  db["hint"] = OptionalString(s.hint);
  db["last_latency_ms"] = s.last_latency_seconds
                              ? Json(std::round(*s.last_latency_seconds * 1e6) / 1e3)
                              : Json(nullptr);
  db["last_probe_at"] = OptionalTime(s.last_probe_at);
  db["last_success_at"] = OptionalTime(s.last_success_at);
  db["consecutive_failures"] = s.consecutive_failures;
  db["target"] = s.target.empty() ? Json(nullptr) : Json(s.target);

  Json pool;
  pool["size"] = s.pool.max_size;
  pool["open"] = s.pool.open;
  pool["idle"] = s.pool.idle;
  pool["checked_out"] = s.pool.busy;
  pool["overflow"] = 0;  // the pool never grows past its size
  pool["waiting"] = s.pool.waiting;
  pool["opened_total"] = s.pool.opened_total;
  pool["closed_total"] = CountsByKey(s.pool.closed_total);
  pool["connect_errors_total"] = CountsByKey(s.pool.connect_errors_total);
  pool["last_connect_error"] = OptionalString(s.pool.last_connect_error);
  pool["backing_off"] = s.pool.backing_off;

  Json j;
  j["status"] = HealthStatusName(s.state);
  j["version"] = kVersion;
  j["uptime_seconds"] = uptime < 0 ? 0 : uptime;
  j["ready"] = ready;
  j["database"] = std::move(db);
  j["pool"] = std::move(pool);
  // Feature sections arrive as JSON values (nlohmann::json, unordered keys as before).
  j["sampling"] = s.sampling;
  j["tracing"] = s.tracing;
  j["neon"] = s.neon;
  j["db_stats"] = s.db_stats;
  j["stats_leader"] = s.stats_leader;
  j["jobs"] = s.jobs;
  j["internal_errors"] = InternalErrorsSection(s.internal_errors);
  // Server messages may carry invalid UTF-8; replace it rather than throw.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace pgvigil
