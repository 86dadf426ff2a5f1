#pragma once
// Settings: the whole validated configuration, built once at start-up from the TOML file, the
// environment and command-line flags, then immutable and shared read-only by every thread.
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/database_url.hpp"
#include "config/duration.hpp"
#include "config/endpoints.hpp"
#include "config/listen_address.hpp"

namespace pgvigil {

struct DatabaseSettings {
  std::string url_env;  // name of the env variable the URL came from ("" when from `url`)
  ConnParams conn;      // parsed URL plus application_name
  std::string application_name = "pgvigil";
  Millis connect_timeout{5000};  // overall deadline for one connect, all hosts/IPs included

  bool operator==(const DatabaseSettings&) const = default;
};

struct PoolSettings {
  int size = 1;                   // 1..4
  Millis max_lifetime{3600'000};  // jittered by up to 10% downwards per connection
  Millis idle_timeout{240'000};   // close a connection unused this long (< Neon's 5 min)
  Millis validate_after{30'000};  // validate (empty query) a connection idle longer than this
  Millis backoff_initial{500};    // reconnect backoff, exponential with full jitter
  Millis backoff_max{30'000};
  Millis misconfigured_backoff{60'000};  // retry pace after auth/config errors

  bool operator==(const PoolSettings&) const = default;
};

struct ProbeSettings {
  Millis interval{10'000};
  Millis timeout{2000};  // hard deadline for the probe query
  int failure_threshold = 3;
  int success_threshold = 1;
  Millis degraded_latency{500};
  // A tick at which other database work on the probe's target is due lets that work's
  // successful statement stand for the probe (no SELECT 1); false = SELECT 1 at every tick.
  bool reuse_traffic = true;

  bool operator==(const ProbeSettings&) const = default;
};

struct HttpSettings {
  ListenAddress listen;                  // 0.0.0.0:9188 unless http.listen / --listen
  bool readyz_requires_db = false;       // /readyz follows the DB-gated state when true
  bool startupz_requires_probe = false;  // /startupz waits for the first finished probe
  Millis shutdown_timeout{5000};         // bound on graceful shutdown
  int threads = 8;

  bool operator==(const HttpSettings&) const = default;
};

enum class LogFormat { kLogfmt, kJson };
enum class LogLevel { kDebug, kInfo, kWarn, kError };

struct LogSettings {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kLogfmt;

  bool operator==(const LogSettings&) const = default;
};

enum class QueryTextMode { kObfuscated, kNone, kRaw };

struct SamplingSettings {
  bool enabled = true;
  Millis statements_interval{60'000};
  Millis activity_interval{15'000};
  Millis slow_threshold{1000};
  Millis cooldown{300'000};  // one long-running sample per fingerprint per window
  int top_n = 20;
  QueryTextMode query_text = QueryTextMode::kObfuscated;
  int max_query_length = 2048;
  Millis statement_timeout{5000};
  int text_cache_size = 1000;
  int top_n_labels = 10;     // expose at most N fingerprints as labels (0 = none)
  Millis history{3600'000};  // statement windows kept for /queries?window=

  bool operator==(const SamplingSettings&) const = default;
};

struct TracingSettings {
  std::optional<HttpEndpoint> otlp_endpoint;   // none = export off (config/endpoints.hpp)
  std::map<std::string, std::string> headers;  // values resolved ("env:NAME" read at start-up)
  double sample_ratio = 1.0;
  int buffer_spans = 512;
  std::string service_name = "pgvigil";
  Millis export_interval{5000};
  Millis export_timeout{10'000};
  int queue_spans = 2048;

  bool operator==(const TracingSettings&) const = default;
};

// The database statistics collectors, by the name of their `collector` label (the keys of
// [stats.intervals] and [stats.timeouts]); pgstats/collectors/all.cpp has one per name.
inline constexpr const char* kStatsCollectorNames[] = {
    "static",   "postmaster", "stat_database", "stat_activity", "locks",
    "database", "settings",   "stat_bgwriter", "replication",   "neon_lfc"};

// stats.election: `auto` elects one stats leader per database among the sidecars watching it
// (fleet/stats_leader.hpp); `off` makes every sidecar collect.
enum class StatsElection { kAuto, kOff };

struct StatsSettings {
  bool enabled = true;      // postgres_exporter-compatible database statistics
  Millis interval{30'000};  // never per scrape; skipped while the database is idle
  StatsElection election = StatsElection::kAuto;
  // Per collector, by name: its interval (default max(interval, what its cost asks: 5-10 min
  // for sizes, settings, static info)) and the deadline of one run (default
  // sampling.statement_timeout).
  std::map<std::string, Millis> intervals;
  std::map<std::string, Millis> timeouts;
  bool operator==(const StatsSettings&) const = default;
};

enum class NeonMode { kAuto, kOn, kOff };
enum class IdlePolicy { kAllowSuspend, kKeepAwake };

struct NeonSettings {
  NeonMode mode = NeonMode::kAuto;
  IdlePolicy idle_policy = IdlePolicy::kAllowSuspend;
  Millis suspend_after{60'000};
  HttpEndpoint api_url = DefaultNeonApiUrl();
  std::string api_key_env = "NEON_API_KEY";
  std::string project_id;
  std::string endpoint_id;  // "" = derived from the host
  Millis api_poll_interval{30'000};
  Millis wake_timeout{15'000};
  std::optional<Millis> wake_check_interval;  // off by default
  // neon.sampling_url (optional direct host for sampling), parsed by the loader, with
  // database.application_name unless the URL names one; nullopt when not set or empty.
  std::optional<ConnParams> sampling_conn;
  bool allow_insecure_tls = false;  // permit sslmode weaker than require on Neon
  bool endpoint_option = false;     // add options=endpoint=<id> (for clients without SNI)

  bool operator==(const NeonSettings&) const = default;
};

struct Settings {
  std::string config_path;  // "" when running on defaults
  DatabaseSettings database;
  PoolSettings pool;
  ProbeSettings probe;
  HttpSettings http;
  LogSettings log;
  SamplingSettings sampling;
  StatsSettings stats;
  TracingSettings tracing;
  NeonSettings neon;

  bool operator==(const Settings&) const = default;
};

// A start-up error. what() is one line naming file:line:column (when known), the key, the
// problem and the allowed values, e.g.
// "pgvigil.toml:7:11: probe.timeout: \"2x\" is not a duration; use e.g. \"250ms\", \"10s\",
// \"1h\"".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliOptions {
  std::string config_path;               // --config PATH ("" = no file: defaults + environment)
  std::optional<std::string> listen;     // --listen HOST:PORT
  std::optional<std::string> log_level;  // --log-level debug|info|warn|error
  bool check_config = false;             // --check-config
  bool version = false;                  // --version
  bool help = false;                     // --help
};

// Parses argv. Throws ConfigError on unknown flags or missing values.
CliOptions ParseCommandLine(int argc, const char* const* argv);

// Looks up an environment variable; injectable for tests.
using EnvLookup = std::optional<std::string> (*)(const char* name);
std::optional<std::string> ProcessEnv(const char* name);

// Builds Settings: file (if any), then env (URL from database.url, else database.url_env, else
// PGVIGIL_DATABASE_URL, else DATABASE_URL), then flags. Throws ConfigError.
Settings LoadSettings(const CliOptions& cli, EnvLookup env = &ProcessEnv);

// Same, from TOML text (for tests and the fuzzer); `source_name` is used in messages.
Settings LoadSettingsFromString(std::string_view toml_text, std::string_view source_name,
                                const CliOptions& cli, EnvLookup env = &ProcessEnv);

const char* LogLevelName(LogLevel level);

// Every "section.key" the config file accepts (tracing.headers is a table of header names).
std::vector<std::string> KnownConfigKeys();

}  // namespace pgvigil
