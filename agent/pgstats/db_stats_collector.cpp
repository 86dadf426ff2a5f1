#include "pgstats/db_stats_collector.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <cctype>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "telemetry/collector_metrics.hpp"
#include "util/log.hpp"
#include "util/time_format.hpp"

namespace pgvigil {

namespace {

using Labels = prometheus::Labels;

// Caps the number of databases (and so of series) one server can produce.
constexpr int kMaxDatabases = 256;

// A gauge family whose label sets are replaced wholesale by each successful run: sets not seen
// in the last run are removed, so a dropped database leaves no stale series behind.
class GaugeVec {
 public:
  GaugeVec(prometheus::Registry& r, const std::string& name, const std::string& help)
      : family_(&prometheus::BuildGauge().Name(name).Help(help).Register(r)) {}

  void Set(const Labels& labels, double v) {
    family_->Add(labels).Set(v);
    seen_.insert(labels);
  }
  // Call after a successful run: forgets the sets this run did not report.
  void Sweep() {
    for (auto it = live_.begin(); it != live_.end();) {
      if (seen_.count(*it) == 0) {
        family_->Remove(&family_->Add(*it));
        it = live_.erase(it);
      } else {
        ++it;
      }
    }
    live_.insert(seen_.begin(), seen_.end());
    seen_.clear();
  }
  // Removes every series (the collector failed, or its data can no longer be vouched for).
  void Clear() {
    live_.insert(seen_.begin(), seen_.end());
    for (const auto& labels : live_) family_->Remove(&family_->Add(labels));
    live_.clear();
    seen_.clear();
  }

 private:
  prometheus::Family<prometheus::Gauge>* family_;
  std::set<Labels> live_, seen_;
};

// A counter that mirrors a cumulative value kept by the server. prometheus-cpp counters only go
// up, so we advance by the difference; when the server's value went down (stats reset, restart)
// the series is recreated at the new value, which Prometheus' rate() treats as a counter reset.
class MirrorCounter {
 public:
  MirrorCounter(prometheus::Registry& r, const std::string& name, const std::string& help)
      : family_(&prometheus::BuildCounter().Name(name).Help(help).Register(r)) {}

  void Set(double v) {
    if (v < 0) return;
    if (last_ && v < *last_) {
      family_->Remove(&family_->Add({}));
      last_.reset();
    }
    const double delta = last_ ? v - *last_ : v;
    family_->Add({}).Increment(delta);
    last_ = v;
  }
  // Removes the series; the next Set starts a new one at the server's value.
  void Clear() {
    if (last_) family_->Remove(&family_->Add({}));
    last_.reset();
  }

 private:
  prometheus::Family<prometheus::Counter>* family_;
  std::optional<double> last_;
};

// A counter fed with a cumulative server value that restarts from zero whenever the server's
// statistics do (a Neon compute restarts on every wake). It only ever goes up, by the increase
// since the last reading; a decrease means a reset, so the new reading is the increase since
// then (the baseline moves to it). Unlike MirrorCounter the series survives compute restarts,
// so rate() over a suspend/wake cycle stays smooth.
class DeltaCounter {
 public:
  DeltaCounter(prometheus::Registry& r, const std::string& name, const std::string& help)
      : counter_(&prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({})) {}

  void Observe(double v) {
    if (v < 0) return;
    const double delta = !last_ ? v : (v >= *last_ ? v - *last_ : v);
    if (delta > 0) counter_->Increment(delta);
    last_ = v;
  }

 private:
  prometheus::Counter* counter_;
  std::optional<double> last_;
};

// pg_settings unit -> (suffix, factor), as postgres_exporter's normaliseUnit.
}  // namespace

std::optional<std::pair<std::string, double>> NormalisePgSettingUnit(const std::string& unit) {
  static const std::map<std::string, std::pair<std::string, double>> kUnits = {
      {"", {"", 1}},
      {"ms", {"seconds", 1e-3}},
      {"s", {"seconds", 1}},
      {"min", {"seconds", 60}},
      {"h", {"seconds", 3600}},
      {"d", {"seconds", 86400}},
      {"B", {"bytes", 1}},
      {"kB", {"bytes", 1024.0}},
      {"MB", {"bytes", 1024.0 * 1024}},
      {"GB", {"bytes", 1024.0 * 1024 * 1024}},
      {"TB", {"bytes", 1024.0 * 1024 * 1024 * 1024}},
      {"8kB", {"bytes", 8192.0}},
      {"16kB", {"bytes", 16384.0}},
      {"32kB", {"bytes", 32768.0}},
      {"16MB", {"bytes", 16.0 * 1024 * 1024}},
      {"32MB", {"bytes", 32.0 * 1024 * 1024}},
      {"64MB", {"bytes", 64.0 * 1024 * 1024}},
  };
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return std::nullopt;
  return it->second;
}

namespace {

const char* const kSettings[] = {"max_connections",
                                 "shared_buffers",
                                 "effective_cache_size",
                                 "work_mem",
                                 "maintenance_work_mem",
                                 "max_wal_size",
                                 "random_page_cost",
                                 "seq_page_cost",
                                 "max_worker_processes",
                                 "max_parallel_workers",
                                 "superuser_reserved_connections"};

}  // namespace

std::string ShortPgVersion(const std::string& version) {
  const auto space = version.find(' ');
  if (space == std::string::npos) return "";
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = space + 1; i < version.size(); ++i) {
    const char c = version[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      cur += c;
    } else if (c == '.' && !cur.empty() && parts.size() < 2) {
      parts.push_back(cur);
      cur.clear();
    } else {
      break;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  if (parts.empty()) return "";
  while (parts.size() < 3) parts.push_back("0");
  return parts[0] + "." + parts[1] + "." + parts[2];
}

namespace {

double Num(const QueryResult& r, int row, int col) { return r.Double(row, col).value_or(0); }

const char* const kStatDatabaseColumns[] = {
    "numbackends", "xact_commit",  "xact_rollback", "blks_read",     "blks_hit",  "tup_returned",
    "tup_fetched", "tup_inserted", "tup_updated",   "tup_deleted",   "conflicts", "temp_files",
    "temp_bytes",  "deadlocks",    "blk_read_time", "blk_write_time"};

const char* const kStatDatabaseHelp[] = {
    "Number of backends currently connected to this database.",
    "Number of transactions in this database that have been committed.",
    "Number of transactions in this database that have been rolled back.",
    "Number of disk blocks read in this database.",
    "Number of times disk blocks were found already in the buffer cache.",
    "Number of rows returned by queries in this database.",
    "Number of rows fetched by queries in this database.",
    "Number of rows inserted by queries in this database.",
    "Number of rows updated by queries in this database.",
    "Number of rows deleted by queries in this database.",
    "Number of queries canceled due to conflicts with recovery in this database.",
    "Number of temporary files created by queries in this database.",
    "Total amount of data written to temporary files by queries in this database.",
    "Number of deadlocks detected in this database.",
    "Time spent reading data file blocks by backends in this database, in milliseconds.",
    "Time spent writing data file blocks by backends in this database, in milliseconds."};

struct BgColumn {
  const char* column;  // SQL expression
  const char* metric;
  const char* help;
};

const BgColumn kBgwriterBefore17[] = {
    {"checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed_total",
     "Number of scheduled checkpoints that have been performed"},
    {"checkpoints_req", "pg_stat_bgwriter_checkpoints_req_total",
     "Number of requested checkpoints that have been performed"},
    {"checkpoint_write_time", "pg_stat_bgwriter_checkpoint_write_time_total",
     "Time spent writing files to disk during checkpoints, in milliseconds"},
    {"checkpoint_sync_time", "pg_stat_bgwriter_checkpoint_sync_time_total",
     "Time spent synchronizing files to disk during checkpoints, in milliseconds"},
    {"buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint_total",
     "Number of buffers written during checkpoints"},
    {"buffers_clean", "pg_stat_bgwriter_buffers_clean_total",
     "Number of buffers written by the background writer"},
    {"maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total",
     "Number of times the background writer stopped a cleaning scan because it had written too "
     "many buffers"},
    {"buffers_backend", "pg_stat_bgwriter_buffers_backend_total",
     "Number of buffers written directly by a backend"},
    {"buffers_backend_fsync", "pg_stat_bgwriter_buffers_backend_fsync_total",
     "Number of times a backend had to execute its own fsync call"},
    {"buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"},
    {"extract(epoch FROM stats_reset)::float8", "pg_stat_bgwriter_stats_reset_total",
     "Time at which these statistics were last reset"},
};

const BgColumn kBgwriter17[] = {
    {"b.buffers_clean", "pg_stat_bgwriter_buffers_clean_total",
     "Number of buffers written by the background writer"},
    {"b.maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total",
     "Number of times the background writer stopped a cleaning scan because it had written too "
     "many buffers"},
    {"b.buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", "Number of buffers allocated"},
    {"extract(epoch FROM b.stats_reset)::float8", "pg_stat_bgwriter_stats_reset_total",
     "Time at which these statistics were last reset"},
    {"c.num_timed", "pg_stat_checkpointer_num_timed_total",
     "Number of scheduled checkpoints due to timeout"},
    {"c.num_requested", "pg_stat_checkpointer_num_requested_total",
     "Number of requested checkpoints that have been performed"},
    {"c.restartpoints_timed", "pg_stat_checkpointer_restartpoints_timed_total",
     "Number of scheduled restartpoints due to timeout or after a failed attempt to perform it"},
    {"c.restartpoints_req", "pg_stat_checkpointer_restartpoints_req_total",
     "Number of requested restartpoints"},
    {"c.restartpoints_done", "pg_stat_checkpointer_restartpoints_done_total",
     "Number of restartpoints that have been performed"},
    {"c.write_time", "pg_stat_checkpointer_write_time_total",
     "Time spent writing files to disk during checkpoints and restartpoints, in milliseconds"},
    {"c.sync_time", "pg_stat_checkpointer_sync_time_total",
     "Time spent synchronizing files to disk during checkpoints and restartpoints, in "
     "milliseconds"},
    {"c.buffers_written", "pg_stat_checkpointer_buffers_written_total",
     "Number of buffers written during checkpoints and restartpoints"},
    {"extract(epoch FROM c.stats_reset)::float8", "pg_stat_checkpointer_stats_reset_total",
     "Time at which these statistics were last reset"},
};

constexpr int kPg17 = 170000;

}  // namespace

struct DbStatsCollector::State {
  // Runs one collector's statement(s); nullopt on success.
  using RunFn = std::function<std::optional<DbError>(Connection&, SteadyTime)>;

  struct Collector {
    std::string name;
    RunFn run;
    std::function<void()> forget;  // removes this collector's series (see SetForgets)
    std::unique_ptr<CollectorMetrics> metrics;
    // Last outcome, for StatusJson (guarded by mu).
    bool ran = false;
    bool ok = false;
    double duration_seconds = 0;
    std::chrono::system_clock::time_point last_success{};
    std::string error;
  };

  prometheus::Registry& registry;
  mutable std::mutex mu;  // guards the status fields of collectors and last_run
  std::vector<Collector> collectors;
  std::optional<SteadyTime> last_start;
  bool forgotten = false;  // Forget() ran and no run since: no pg_* series exported
  std::chrono::system_clock::time_point last_run{};

  GaugeVec pg_static;
  GaugeVec postmaster_start;
  std::vector<GaugeVec> stat_database;  // parallel to kStatDatabaseColumns
  GaugeVec activity_count, activity_max_tx;
  GaugeVec locks_count;
  GaugeVec database_size;
  std::map<std::string, GaugeVec> settings;  // by metric name, created on first sight
  std::map<std::string, MirrorCounter> bg_counters;
  GaugeVec is_replica, lag_seconds;
  GaugeVec lfc_available, lfc_used_chunks, lfc_hit_ratio;
  DeltaCounter lfc_hits, lfc_misses, lfc_writes;

  explicit State(prometheus::Registry& r)
      : registry(r),
        pg_static(r, "pg_static", "Version string as reported by postgres"),
        postmaster_start(r, "pg_postmaster_start_time_seconds", "Time at which postmaster started"),
        activity_count(r, "pg_stat_activity_count", "number of connections in this state"),
        activity_max_tx(r, "pg_stat_activity_max_tx_duration",
                        "max duration in seconds any active transaction has been running"),
        locks_count(r, "pg_locks_count", "Number of locks"),
        database_size(r, "pg_database_size_bytes", "Disk space used by the database"),
        is_replica(r, "pg_replication_is_replica", "Indicates if the server is a replica"),
        lag_seconds(r, "pg_replication_lag_seconds", "Replication lag behind master in seconds"),
        lfc_available(r, "pgvigil_neon_lfc_available",
                      "1 when Neon's neon_stat_file_cache view is readable (the neon extension "
                      "is installed), else 0"),
        lfc_used_chunks(r, "pgvigil_neon_lfc_used_chunks",
                        "Chunks of Neon's local file cache in use (1 MiB each by default)"),
        lfc_hit_ratio(r, "pgvigil_neon_lfc_hit_ratio",
                      "Neon local file cache hits / (hits + misses) since the compute started, "
                      "0..1"),
        lfc_hits(r, "pgvigil_neon_lfc_hits_total",
                 "Reads served by Neon's local file cache (survives compute restarts)"),
        lfc_misses(r, "pgvigil_neon_lfc_misses_total",
                   "Reads Neon's local file cache missed, served by the pageserver"),
        lfc_writes(r, "pgvigil_neon_lfc_writes_total", "Writes into Neon's local file cache") {
    for (size_t i = 0; i < std::size(kStatDatabaseColumns); ++i) {
      stat_database.emplace_back(r, std::string("pg_stat_database_") + kStatDatabaseColumns[i],
                                 kStatDatabaseHelp[i]);
    }
  }

  // What each collector removes when it fails or on Forget(): every series it sets.
  void SetForgets() {
    const std::map<std::string, std::function<void()>> forgets = {
        {"static", [this] { pg_static.Clear(); }},
        {"postmaster", [this] { postmaster_start.Clear(); }},
        {"stat_database",
         [this] {
           for (auto& g : stat_database) g.Clear();
         }},
        {"stat_activity",
         [this] {
           activity_count.Clear();
           activity_max_tx.Clear();
         }},
        {"locks", [this] { locks_count.Clear(); }},
        {"database", [this] { database_size.Clear(); }},
        {"settings",
         [this] {
           for (auto& [name, g] : settings) g.Clear();
         }},
        {"stat_bgwriter",
         [this] {
           for (auto& [name, c] : bg_counters) c.Clear();
         }},
        {"replication",
         [this] {
           is_replica.Clear();
           lag_seconds.Clear();
         }},
        // pgvigil_neon_lfc_*_total stay: pgvigil accumulates them across compute restarts.
        {"neon_lfc",
         [this] {
           lfc_available.Clear();
           lfc_used_chunks.Clear();
           lfc_hit_ratio.Clear();
         }},
    };
    for (auto& c : collectors) c.forget = forgets.at(c.name);
  }

  MirrorCounter& Bg(const BgColumn& c) {
    auto it = bg_counters.find(c.metric);
    if (it == bg_counters.end()) {
      it = bg_counters.try_emplace(c.metric, registry, c.metric, c.help).first;
    }
    return it->second;
  }
};

namespace {

// Runs `sql` and hands the result to `use`; the error otherwise.
std::optional<DbError> Query(Connection& conn, const std::string& sql,
                             const std::vector<std::string>& params, SteadyTime deadline,
                             const std::function<void(const QueryResult&)>& use) {
  auto res = conn.Exec(sql, params, deadline);
  if (!res.ok()) {
    return res.error.value_or(DbError{ErrorKind::kUnknown, "", "query failed"});
  }
  use(*res.value);
  return std::nullopt;
}

}  // namespace

DbStatsCollector::DbStatsCollector(prometheus::Registry& registry, DbStatsOptions options)
    : options_(options), state_(std::make_unique<State>(registry)) {
  State& st = *state_;
  auto add = [&](std::string name, State::RunFn fn) {
    State::Collector c;
    c.metrics = std::make_unique<CollectorMetrics>(registry, name);
    c.name = std::move(name);
    c.run = std::move(fn);
    st.collectors.push_back(std::move(c));
  };

  add("static", [&st](Connection& conn, SteadyTime deadline) {
    return Query(conn, "/* pgvigil */ SELECT version()", {}, deadline, [&](const QueryResult& r) {
      if (r.Rows() < 1) return;
      const std::string v = r.Text(0, 0);
      st.pg_static.Set({{"version", v}, {"short_version", ShortPgVersion(v)}}, 1);
      st.pg_static.Sweep();
    });
  });

  add("postmaster", [&st](Connection& conn, SteadyTime deadline) {
    return Query(conn,
                 "/* pgvigil */ SELECT extract(epoch FROM pg_postmaster_start_time())::float8", {},
                 deadline, [&](const QueryResult& r) {
                   if (r.Rows() < 1) return;
                   st.postmaster_start.Set({}, Num(r, 0, 0));
                   st.postmaster_start.Sweep();
                 });
  });

  add("stat_database", [&st](Connection& conn, SteadyTime deadline) {
    std::string sql = "/* pgvigil */ SELECT datid::text, datname";
    for (const char* c : kStatDatabaseColumns) sql += std::string(", ") + c;
    sql += " FROM pg_stat_database WHERE datname IS NOT NULL ORDER BY datname LIMIT " +
           std::to_string(kMaxDatabases);
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      for (int row = 0; row < r.Rows(); ++row) {
        const Labels labels{{"datid", r.Text(row, 0)}, {"datname", r.Text(row, 1)}};
        for (size_t i = 0; i < st.stat_database.size(); ++i) {
          st.stat_database[i].Set(labels, Num(r, row, static_cast<int>(i) + 2));
        }
      }
      for (auto& g : st.stat_database) g.Sweep();
    });
  });

  add("stat_activity", [&st](Connection& conn, SteadyTime deadline) {
    const std::string sql =
        "/* pgvigil */ SELECT d.datname, s.state, COALESCE(a.count, 0), "
        "COALESCE(a.max_tx_duration, 0) "
        "FROM (VALUES ('active'), ('idle'), ('idle in transaction'), "
        "('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) "
        "AS s(state) "
        "CROSS JOIN (SELECT datname FROM pg_database ORDER BY datname LIMIT " +
        std::to_string(kMaxDatabases) +
        ") AS d "
        "LEFT JOIN (SELECT datname, state, count(*) AS count, "
        "max(extract(epoch FROM now() - xact_start))::float8 AS max_tx_duration "
        "FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname, state) AS a "
        "ON a.state = s.state AND a.datname = d.datname";
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      for (int row = 0; row < r.Rows(); ++row) {
        const Labels labels{{"datname", r.Text(row, 0)}, {"state", r.Text(row, 1)}};
        st.activity_count.Set(labels, Num(r, row, 2));
        st.activity_max_tx.Set(labels, Num(r, row, 3));
      }
      st.activity_count.Sweep();
      st.activity_max_tx.Sweep();
    });
  });

  add("locks", [&st](Connection& conn, SteadyTime deadline) {
    const std::string sql =
        "/* pgvigil */ SELECT d.datname, m.mode, COALESCE(l.count, 0) "
        "FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), "
        "('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), "
        "('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode) "
        "CROSS JOIN (SELECT oid, datname FROM pg_database ORDER BY datname LIMIT " +
        std::to_string(kMaxDatabases) +
        ") AS d "
        "LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks "
        "WHERE database IS NOT NULL GROUP BY database, lower(mode)) AS l "
        "ON l.mode = m.mode AND l.database = d.oid";
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      for (int row = 0; row < r.Rows(); ++row) {
        st.locks_count.Set({{"datname", r.Text(row, 0)}, {"mode", r.Text(row, 1)}}, Num(r, row, 2));
      }
      st.locks_count.Sweep();
    });
  });

  add("database", [&st](Connection& conn, SteadyTime deadline) {
    // Databases we may not size are left out rather than failing the whole statement.
    const std::string sql =
        "/* pgvigil */ SELECT datname, CASE WHEN has_database_privilege(oid, 'CONNECT') "
        "OR pg_has_role('pg_read_all_stats', 'MEMBER') THEN pg_database_size(oid) END "
        "FROM pg_database ORDER BY datname LIMIT " +
        std::to_string(kMaxDatabases);
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      for (int row = 0; row < r.Rows(); ++row) {
        if (r.IsNull(row, 1)) continue;
        st.database_size.Set({{"datname", r.Text(row, 0)}}, Num(r, row, 1));
      }
      st.database_size.Sweep();
    });
  });

  add("settings", [&st](Connection& conn, SteadyTime deadline) {
    std::string names = "{";
    for (const char* s : kSettings) names += std::string(names.size() > 1 ? "," : "") + s;
    names += "}";
    return Query(conn,
                 "/* pgvigil */ SELECT name, setting, COALESCE(unit, ''), vartype, short_desc "
                 "FROM pg_settings WHERE name = ANY($1::text[]) AND vartype IN ('integer', 'real')",
                 {names}, deadline, [&](const QueryResult& r) {
                   for (int row = 0; row < r.Rows(); ++row) {
                     auto unit = NormalisePgSettingUnit(r.Text(row, 2));
                     auto value = r.Double(row, 1);
                     if (!unit || !value)
                       continue;  // a unit postgres_exporter does not know either
                     std::string name = "pg_settings_" + r.Text(row, 0);
                     std::string help = r.Text(row, 4);
                     double v = *value;
                     if (!unit->first.empty()) {
                       name += "_" + unit->first;
                       help += " [Units converted to " + unit->first + ".]";
                       if (v != -1) v *= unit->second;  // -1 means "disabled" and stays as is
                     }
                     auto it = st.settings.find(name);
                     if (it == st.settings.end()) {
                       it = st.settings.try_emplace(name, st.registry, name, help).first;
                     }
                     it->second.Set({}, v);
                     it->second.Sweep();
                   }
                 });
  });

  add("stat_bgwriter", [&st](Connection& conn, SteadyTime deadline) {
    const bool pg17 = conn.server_version() >= kPg17;
    const BgColumn* cols = pg17 ? kBgwriter17 : kBgwriterBefore17;
    const size_t n = pg17 ? std::size(kBgwriter17) : std::size(kBgwriterBefore17);
    std::string sql = "/* pgvigil */ SELECT ";
    for (size_t i = 0; i < n; ++i) sql += std::string(i ? ", " : "") + cols[i].column;
    sql +=
        pg17 ? " FROM pg_stat_bgwriter AS b, pg_stat_checkpointer AS c" : " FROM pg_stat_bgwriter";
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      if (r.Rows() < 1) return;
      for (size_t i = 0; i < n; ++i) {
        if (r.IsNull(0, static_cast<int>(i))) continue;
        st.Bg(cols[i]).Set(Num(r, 0, static_cast<int>(i)));
      }
    });
  });

  add("replication", [&st](Connection& conn, SteadyTime deadline) {
    // As postgres_exporter: no lag on a primary or on a replica that replayed all it received.
    const std::string sql =
        "/* pgvigil */ SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
        "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) "
        "END::float8, CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END";
    return Query(conn, sql, {}, deadline, [&](const QueryResult& r) {
      if (r.Rows() < 1) return;
      st.lag_seconds.Set({}, Num(r, 0, 0));
      st.is_replica.Set({}, Num(r, 0, 1));
      st.lag_seconds.Sweep();
      st.is_replica.Sweep();
    });
  });

  add("neon_lfc", [&st](Connection& conn, SteadyTime deadline) {
    // Neon's extension is opt-in (CREATE EXTENSION neon), so the view is usually absent: that
    // is not an error. Looked up every run, as it may be created at any time. The view found
    // by search_path wins, else any schema's.
    std::string view;
    auto err = Query(conn,
                     "/* pgvigil */ SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE c.relname = 'neon_stat_file_cache' AND c.relkind IN ('v', 'm', 'r') "
                     "ORDER BY c.oid = to_regclass('neon_stat_file_cache')::oid DESC NULLS LAST, "
                     "n.nspname LIMIT 1",
                     {}, deadline, [&](const QueryResult& r) {
                       if (r.Rows() > 0) view = r.Text(0, 0);
                     });
    if (err) return err;
    if (view.empty()) {
      st.lfc_available.Set({}, 0);
      st.lfc_available.Sweep();
      st.lfc_used_chunks.Sweep();  // nothing seen: the series go away
      st.lfc_hit_ratio.Sweep();
      return err;
    }
    // `view` is quoted by format('%I.%I'), so splicing it is safe.
    return Query(conn,
                 "/* pgvigil */ SELECT file_cache_hits::float8, file_cache_misses::float8, "
                 "file_cache_writes::float8, file_cache_used::float8, "
                 "file_cache_hit_ratio::float8 FROM " +
                     view + " LIMIT 1",
                 {}, deadline, [&](const QueryResult& r) {
                   st.lfc_available.Set({}, 1);
                   if (r.Rows() > 0) {
                     if (!r.IsNull(0, 0)) st.lfc_hits.Observe(Num(r, 0, 0));
                     if (!r.IsNull(0, 1)) st.lfc_misses.Observe(Num(r, 0, 1));
                     if (!r.IsNull(0, 2)) st.lfc_writes.Observe(Num(r, 0, 2));
                     if (!r.IsNull(0, 3)) st.lfc_used_chunks.Set({}, Num(r, 0, 3));
                     // The view gives a percentage, NULL before the first read.
                     if (!r.IsNull(0, 4)) st.lfc_hit_ratio.Set({}, Num(r, 0, 4) / 100.0);
                   }
                   st.lfc_available.Sweep();
                   st.lfc_used_chunks.Sweep();
                   st.lfc_hit_ratio.Sweep();
                 });
  });
  st.SetForgets();
}

DbStatsCollector::~DbStatsCollector() = default;

void DbStatsCollector::Forget() {
  State& st = *state_;
  for (auto& c : st.collectors) c.forget();
  std::lock_guard lock(st.mu);
  st.forgotten = true;
}

DbStatsRunStatus DbStatsCollector::RunAll(Connection& conn) {
  return RunAll(conn, std::chrono::steady_clock::now() + options_.interval);
}

DbStatsRunStatus DbStatsCollector::RunAll(Connection& conn, SteadyTime deadline) {
  DbStatsRunStatus status;
  State& st = *state_;
  const auto start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(st.mu);
    st.last_start = start;
    st.last_run = std::chrono::system_clock::now();
    st.forgotten = false;
  }
  for (auto& c : st.collectors) {
    const auto now = std::chrono::steady_clock::now();
    if (status.connection_lost || conn.broken() || now >= deadline) {
      ++status.skipped;
      continue;
    }
    const SteadyTime query_deadline = std::min(deadline, now + options_.query_timeout);
    std::optional<DbError> err = c.run(conn, query_deadline);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - now;
    std::lock_guard lock(st.mu);
    c.ran = true;
    c.duration_seconds = took.count();
    if (!err) {
      ++status.succeeded;
      c.metrics->RecordSuccess(took);
      c.ok = true;
      c.last_success = std::chrono::system_clock::now();
      c.error.clear();
    } else {
      ++status.failed;
      c.metrics->RecordFailure(took);
      c.forget();                     // no stale series: gone until the collector works again
      if (c.ok || c.error.empty()) {  // log transitions, not every run
        LogWarn("database statistics collector failed",
                {{"collector", c.name},
                 {"kind", std::string(ErrorKindName(err->kind))},
                 {"error", err->message}});
      }
      c.ok = false;
      c.error = std::string(ErrorKindName(err->kind)) + ": " + err->message;
      if (conn.broken() || err->ConnectionLost()) status.connection_lost = true;
    }
  }
  return status;
}

bool DbStatsCollector::Due(SteadyTime now) const {
  std::lock_guard lock(state_->mu);
  return !state_->last_start || now - *state_->last_start >= options_.interval;
}

nlohmann::json DbStatsCollector::StatusJson() const {
  const State& st = *state_;
  std::lock_guard lock(st.mu);
  nlohmann::json j;
  j["interval_seconds"] = std::chrono::duration<double>(options_.interval).count();
  j["last_run"] = st.last_start ? nlohmann::json(FormatRfc3339Utc(st.last_run)) : nlohmann::json();
  j["series_exported"] = st.last_start.has_value() && !st.forgotten;
  nlohmann::json cs = nlohmann::json::object();
  for (const auto& c : st.collectors) {
    nlohmann::json one;
    one["ok"] = c.ran && c.ok;
    one["ran"] = c.ran;
    one["duration_seconds"] = c.duration_seconds;
    one["errors"] = c.metrics->errors();
    one["last_success"] = c.last_success.time_since_epoch().count() == 0
                              ? nlohmann::json()
                              : nlohmann::json(FormatRfc3339Utc(c.last_success));
    if (!c.error.empty()) one["error"] = c.error;
    cs[c.name] = std::move(one);
  }
  j["collectors"] = std::move(cs);
  return j;
}

}  // namespace pgvigil
