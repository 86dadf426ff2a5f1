#include "config/settings.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "support/config_error.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

// The injected environment: tests set it first (Catch runs them in random order).
std::map<std::string, std::string> g_env;

std::optional<std::string> FakeEnv(const char* name) {
  auto it = g_env.find(name);
  if (it == g_env.end()) return std::nullopt;
  return it->second;
}

constexpr const char* kEnvUrl = "postgresql://app:hunter2@db.internal:5432/app?sslmode=require";

Settings Load(std::string_view toml, const CliOptions& cli = {}) {
  return LoadSettingsFromString(toml, "t.toml", cli, &FakeEnv);
}

// Loads, expecting a ConfigError; returns its message.
std::string LoadError(std::string_view toml, const CliOptions& cli = {}) {
  return test::ConfigErrorOf(toml, &FakeEnv, cli);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Settings DefaultsWithEnvUrl() {
  Settings s;
  s.database.url_env = "PGVIGIL_DATABASE_URL";
  s.database.conn = *ParseDatabaseUrl(kEnvUrl);
  s.database.conn.Set("application_name", "pgvigil");
  return s;
}

TEST_CASE("the reference config loads and equals the defaults", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  CliOptions cli;
  cli.config_path = std::string(PGVIGIL_SOURCE_DIR) + "/config/pgvigil.toml";
  Settings loaded = LoadSettings(cli, &FakeEnv);
  Settings expected = DefaultsWithEnvUrl();
  expected.config_path = cli.config_path;
  // Section by section first, for a readable failure.
  CHECK(loaded.database == expected.database);
  CHECK(loaded.pool == expected.pool);
  CHECK(loaded.probe == expected.probe);
  CHECK(loaded.http == expected.http);
  CHECK(loaded.log == expected.log);
  CHECK(loaded.sampling == expected.sampling);
  CHECK(loaded.tracing == expected.tracing);
  CHECK(loaded.neon == expected.neon);
  CHECK(loaded == expected);
}

TEST_CASE("the reference config documents every key", "[config][settings]") {
  const std::string text = ReadFile(std::string(PGVIGIL_SOURCE_DIR) + "/config/pgvigil.toml");
  for (const std::string& full : KnownConfigKeys()) {
    INFO("key: " << full);
    const std::string section = full.substr(0, full.find('.'));
    const std::string key = full.substr(full.find('.') + 1);
    if (full == "tracing.headers") {
      CHECK(text.find("\n[tracing.headers]\n") != std::string::npos);
      continue;
    }
    const size_t begin = text.find("\n[" + section + "]\n");
    REQUIRE(begin != std::string::npos);
    const size_t end = text.find("\n[", begin + 1);
    const std::string body = text.substr(begin, end == std::string::npos ? end : end - begin);
    CHECK((body.find("\n" + key + " = ") != std::string::npos ||
           body.find("\n# " + key + " = ") != std::string::npos));
  }
}

TEST_CASE("the minimal example loads", "[config][settings]") {
  g_env = {{"DATABASE_URL", kEnvUrl}};
  CliOptions cli;
  cli.config_path = std::string(PGVIGIL_SOURCE_DIR) + "/config/minimal.toml";
  Settings s = LoadSettings(cli, &FakeEnv);
  CHECK(s.log.format == LogFormat::kJson);
  CHECK(s.database.url_env == "DATABASE_URL");
  CHECK(s.probe == ProbeSettings{});
}

TEST_CASE("no config file: defaults and environment", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  Settings s = LoadSettings(CliOptions{}, &FakeEnv);
  CHECK(s == DefaultsWithEnvUrl());
  CHECK(s.config_path.empty());
  CHECK(s.database.conn.Get("application_name") == "pgvigil");
}

TEST_CASE("a full config is read into every field", "[config][settings]") {
  g_env = {{"OTLP_KEY", "k-123"}};
  Settings s = Load(R"(
[database]
url = "postgresql+asyncpg://u:pw@ep-cool-1.us-east-2.aws.neon.tech/neondb?ssl=require"
application_name = "sidecar"
connect_timeout = "3s"
[pool]
size = 2
max_lifetime = "30m"
idle_timeout = "2m"
validate_after = "0s"
backoff_initial = "1s"
backoff_max = "1m"
misconfigured_backoff = "5m"
[probe]
interval = "5s"
timeout = "1s"
failure_threshold = 5
success_threshold = 2
degraded_latency = "250ms"
[http]
listen = "[::]:0"
readyz_requires_db = true
startupz_requires_probe = true
shutdown_timeout = "2s"
threads = 4
[log]
level = "debug"
format = "json"
[sampling]
enabled = false
statements_interval = "2m"
activity_interval = "30s"
slow_threshold = "2s"
cooldown = "0s"
top_n = 50
query_text = "none"
max_query_length = 64
statement_timeout = "1s"
text_cache_size = 10
top_n_labels = 5
history = "30m"
[tracing]
otlp_endpoint = "http://collector:4318/v1/traces"
sample_ratio = 0
buffer_spans = 100
service_name = "svc"
export_interval = "1s"
export_timeout = "2s"
queue_spans = 10
[tracing.headers]
x-api-key = "env:OTLP_KEY"
x-tenant = "acme"
[neon]
mode = "on"
idle_policy = "keep_awake"
suspend_after = "2m"
api_url = "http://127.0.0.1:1234/api/v2"
api_key_env = "MY_NEON_KEY"
project_id = "proj-1"
endpoint_id = "ep-cool-1"
api_poll_interval = "10s"
wake_timeout = "20s"
wake_check_interval = "1h"
sampling_url = "postgresql://u:pw@ep-cool-1.us-east-2.aws.neon.tech/neondb?sslmode=require"
allow_insecure_tls = true
endpoint_option = true
)");
  CHECK(s.database.url_env.empty());
  CHECK(s.database.conn.Host() == "ep-cool-1.us-east-2.aws.neon.tech");
  CHECK(s.database.conn.Get("sslmode") == "require");
  CHECK(s.database.conn.Get("application_name") == "sidecar");
  CHECK(s.database.application_name == "sidecar");
  CHECK(s.database.connect_timeout == 3s);
  CHECK(s.pool == PoolSettings{2, 30min, 2min, 0ms, 1s, 1min, 5min});
  CHECK(s.probe == ProbeSettings{5s, 1s, 5, 2, 250ms});
  CHECK(s.http == HttpSettings{{"::", 0}, true, true, 2s, 4});
  CHECK(s.log == LogSettings{LogLevel::kDebug, LogFormat::kJson});
  CHECK(s.sampling == SamplingSettings{false, 2min, 30s, 2s, 0ms, 50, QueryTextMode::kNone, 64, 1s,
                                       10, 5, 30min});
  REQUIRE(s.tracing.otlp_endpoint);
  CHECK(s.tracing.otlp_endpoint->Redacted() == "http://collector:4318/v1/traces");
  CHECK(s.tracing.headers ==
        std::map<std::string, std::string>{{"x-api-key", "k-123"}, {"x-tenant", "acme"}});
  CHECK(s.tracing.sample_ratio == 0.0);
  CHECK(s.tracing.buffer_spans == 100);
  CHECK(s.tracing.service_name == "svc");
  CHECK(s.tracing.export_interval == 1s);
  CHECK(s.tracing.export_timeout == 2s);
  CHECK(s.tracing.queue_spans == 10);
  CHECK(s.neon.mode == NeonMode::kOn);
  CHECK(s.neon.idle_policy == IdlePolicy::kKeepAwake);
  CHECK(s.neon.suspend_after == 2min);
  CHECK(s.neon.api_url.Redacted() == "http://127.0.0.1:1234/api/v2");
  CHECK(s.neon.api_key_env == "MY_NEON_KEY");
  CHECK(s.neon.project_id == "proj-1");
  CHECK(s.neon.endpoint_id == "ep-cool-1");
  CHECK(s.neon.api_poll_interval == 10s);
  CHECK(s.neon.wake_timeout == 20s);
  CHECK(s.neon.wake_check_interval == Millis(1h));
  REQUIRE(s.neon.sampling_conn);
  CHECK(s.neon.sampling_conn->Host() == "ep-cool-1.us-east-2.aws.neon.tech");
  CHECK(s.neon.sampling_conn->Get("user") == "u");
  CHECK(s.neon.sampling_conn->Get("password") == "pw");
  CHECK(s.neon.sampling_conn->Get("sslmode") == "require");
  CHECK(s.neon.sampling_conn->Get("application_name") == s.database.application_name);
  CHECK(s.neon.allow_insecure_tls);
  CHECK(s.neon.endpoint_option);
}

TEST_CASE("stats.election is auto by default and may be turned off", "[config][settings]") {
  CHECK(Settings{}.stats.election == StatsElection::kAuto);
  const std::string db = "[database]\nurl = \"postgresql://u@h/d\"\n";
  CHECK(Load(db + "[stats]\nelection = \"off\"\n").stats.election == StatsElection::kOff);
  CHECK(Load(db + "[stats]\nelection = \"auto\"\n").stats.election == StatsElection::kAuto);
}

TEST_CASE("database URL precedence", "[config][settings]") {
  const std::string file_url = "postgresql://f:pw@from-file/db";
  SECTION("url in the file beats the environment") {
    g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}, {"DATABASE_URL", kEnvUrl}};
    Settings s = Load("[database]\nurl = \"" + file_url + "\"\n");
    CHECK(s.database.conn.Host() == "from-file");
    CHECK(s.database.url_env.empty());
  }
  SECTION("url_env names the variable") {
    g_env = {{"APP_DB", "postgresql://x@from-app-db/db"}, {"PGVIGIL_DATABASE_URL", kEnvUrl}};
    Settings s = Load("[database]\nurl_env = \"APP_DB\"\n");
    CHECK(s.database.conn.Host() == "from-app-db");
    CHECK(s.database.url_env == "APP_DB");
  }
  SECTION("PGVIGIL_DATABASE_URL beats DATABASE_URL") {
    g_env = {{"PGVIGIL_DATABASE_URL", "postgresql://a@pgvigil-url/db"},
             {"DATABASE_URL", "postgresql://a@plain-url/db"}};
    Settings s = Load("");
    CHECK(s.database.conn.Host() == "pgvigil-url");
    CHECK(s.database.url_env == "PGVIGIL_DATABASE_URL");
  }
  SECTION("DATABASE_URL is the last resort; empty variables count as unset") {
    g_env = {{"PGVIGIL_DATABASE_URL", ""}, {"DATABASE_URL", "postgresql://a@plain-url/db"}};
    Settings s = Load("");
    CHECK(s.database.conn.Host() == "plain-url");
    CHECK(s.database.url_env == "DATABASE_URL");
  }
  SECTION("no URL anywhere") {
    g_env = {};
    const std::string e = LoadError("");
    CHECK_THAT(e, Catch::Contains("no database URL") && Catch::Contains("PGVIGIL_DATABASE_URL") &&
                      Catch::Contains("database.url"));
  }
  SECTION("url and url_env together") {
    g_env = {{"APP_DB", kEnvUrl}};
    CHECK_THAT(LoadError("[database]\nurl = \"" + file_url + "\"\nurl_env = \"APP_DB\"\n"),
               Catch::StartsWith("t.toml:3:11: database.url_env:") && Catch::Contains("not both"));
  }
  SECTION("url_env names a missing variable") {
    g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
    CHECK_THAT(
        LoadError("[database]\nurl_env = \"NOPE\"\n"),
        Catch::StartsWith("t.toml:2:11: database.url_env:") && Catch::Contains("NOPE is not set"));
  }
  SECTION("a bad URL in the environment names the variable, not the password") {
    g_env = {{"DATABASE_URL", "postgresql://u:hunter2@h/d?foo=1"}};
    const std::string e = LoadError("");
    CHECK_THAT(e,
               Catch::StartsWith("environment variable DATABASE_URL: unknown parameter \"foo\""));
    CHECK(e.find("hunter2") == std::string::npos);
  }
  SECTION("the URL's application_name wins") {
    g_env = {{"DATABASE_URL", "postgresql://u@h/d?application_name=mine"}};
    Settings s = Load("[database]\napplication_name = \"other\"\n");
    CHECK(s.database.conn.Get("application_name") == "mine");
    CHECK(s.database.application_name == "mine");
  }
}

TEST_CASE("errors name file:line:col, the key, the problem and what is allowed",
          "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  struct Case {
    const char* toml;
    const char* prefix;    // exact start of the message
    const char* fragment;  // somewhere in it
  };
  const Case cases[] = {
      // Bad values.
      {"[probe]\ninterval = \"2x\"\n", "t.toml:2:12: probe.interval: \"2x\"", "\"10s\""},
      {"[probe]\ninterval = 10\n", "t.toml:2:12: probe.interval: expected a duration string",
       "\"10s\""},
      {"[probe]\ninterval = \"0s\"\n", "t.toml:2:12: probe.interval: \"0s\" must be greater than 0",
       ""},
      {"[probe]\ninterval = \"31d\"\n", "t.toml:2:12: probe.interval: \"31d\" is too long", "30d"},
      {"[pool]\nsize = 5\n", "t.toml:2:8: pool.size: 5 is out of range; allowed 1..4", ""},
      {"[pool]\nsize = \"2\"\n", "t.toml:2:8: pool.size: expected an integer, got a string",
       "1..4"},
      {"[pool]\nsize = 2.0\n", "t.toml:2:8: pool.size: expected an integer, got a float", ""},
      {"[probe]\nfailure_threshold = 0\n",
       "t.toml:2:21: probe.failure_threshold: 0 is out of range", "1..100"},
      {"[probe]\nsuccess_threshold = 101\n", "t.toml:2:21: probe.success_threshold:", "1..100"},
      {"[probe]\ninterval = \"1s\"\ntimeout = \"1s\"\n",
       "t.toml:3:11: probe.timeout: probe.timeout (1s) must be shorter than probe.interval (1s)",
       ""},
      {"[probe]\ninterval = \"1s\"\n", "t.toml:2:12: probe.interval: probe.timeout (2s)", ""},
      {"[pool]\nbackoff_initial = \"1m\"\n", "t.toml:2:19: pool.backoff_initial:", "backoff_max"},
      {"[tracing]\nsample_ratio = 1.5\n", "t.toml:2:16: tracing.sample_ratio:", "0.0..1.0"},
      {"[tracing]\nbuffer_spans = 100001\n", "t.toml:2:16: tracing.buffer_spans:", "1..100000"},
      {"[tracing]\notlp_endpoint = \"collector:4318\"\n",
       "t.toml:2:17: tracing.otlp_endpoint:", "http://"},
      {"[sampling]\ntop_n = 0\n", "t.toml:2:9: sampling.top_n:", "1..1000"},
      {"[sampling]\nmax_query_length = 63\n",
       "t.toml:2:20: sampling.max_query_length:", "64..65536"},
      {"[sampling]\nhistory = \"30s\"\n", "t.toml:2:11: sampling.history: \"30s\" is out of range",
       "allowed 1m..24h"},
      {"[sampling]\nhistory = \"25h\"\n", "t.toml:2:11: sampling.history:", "1m..24h"},
      {"[sampling]\nstatements_interval = \"2h\"\n",
       "t.toml:2:23: sampling.statements_interval: sampling.history (1h) must be at least",
       "raise sampling.history"},
      {"[sampling]\nquery_text = \"full\"\n", "t.toml:2:14: sampling.query_text: \"full\" is not",
       "allowed obfuscated, none, raw"},
      {"[http]\nlisten = \"9188\"\n", "t.toml:2:10: http.listen: \"9188\" is not HOST:PORT",
       "0.0.0.0:9188"},
      {"[http]\nlisten = \"0.0.0.0:65536\"\n", "t.toml:2:10: http.listen:", "0..65535"},
      {"[http]\nlisten = \"::1:80\"\n", "t.toml:2:10: http.listen:", "[::]:9188"},
      {"[tracing]\notlp_endpoint = \"http://\"\n",
       "t.toml:2:17: tracing.otlp_endpoint: \"http://\" has no host", "http://localhost:4318"},
      {"[tracing]\notlp_endpoint = \"https://collector:0/v1/traces\"\n",
       "t.toml:2:17: tracing.otlp_endpoint:", "port"},
      {"[neon]\napi_url = \"https://\"\n", "t.toml:2:11: neon.api_url: \"https://\" has no host",
       "https://console.neon.tech/api/v2"},
      {"[neon]\napi_url = \"https://u:k@console.neon.tech/api/v2\"\n",
       "t.toml:2:11: neon.api_url:", "neon.api_key_env"},
      {"[http]\nreadyz_requires_db = \"true\"\n",
       "t.toml:2:22: http.readyz_requires_db:", "without quotes"},
      {"[log]\nlevel = \"verbose\"\n", "t.toml:2:9: log.level: \"verbose\" is not allowed",
       "allowed debug, info, warn, error"},
      {"[log]\nformat = \"text\"\n", "t.toml:2:10: log.format:", "logfmt, json"},
      {"[neon]\nmode = \"maybe\"\n", "t.toml:2:8: neon.mode:", "auto, on, off"},
      {"[stats]\nelection = \"maybe\"\n", "t.toml:2:12: stats.election:", "auto, off"},
      {"[neon]\nidle_policy = \"sleep\"\n",
       "t.toml:2:15: neon.idle_policy:", "allow_suspend, keep_awake"},
      {"[neon]\napi_poll_interval = \"100ms\"\n",
       "t.toml:2:21: neon.api_poll_interval:", "too short"},
      {"[neon]\nwake_check_interval = \"x\"\n", "t.toml:2:23: neon.wake_check_interval:", ""},
      {"[neon]\napi_key_env = \"MY-KEY\"\n",
       "t.toml:2:15: neon.api_key_env:", "not an environment variable name"},
      {"[database]\nurl_env = \"\"\nconnect_timeout = \"1.5s\"\n",
       "t.toml:3:19: database.connect_timeout: \"1.5s\" has a fraction", "1500ms"},
      {"[database]\napplication_name = \"\"\n", "t.toml:2:20: database.application_name:", ""},
      // Unknown names.
      {"[probe]\nintervall = \"10s\"\n",
       "t.toml:2:1: probe.intervall: unknown key (did you mean 'interval'?)", "keys in [probe]"},
      {"[probe]\nsize = 2\n", "t.toml:2:1: probe.size: unknown key ('size' belongs in [pool])", ""},
      {"[probe]\nzzz = 2\n", "t.toml:2:1: probe.zzz: unknown key; keys in [probe]: interval", ""},
      {"[prob]\ninterval = \"10s\"\n", "t.toml:1:2: unknown section [prob] (did you mean [probe]?)",
       "sections are database, pool"},
      {"interval = \"10s\"\n", "t.toml:1:1: unknown top-level key 'interval'",
       "put it under [probe]"},
      {"probe = 5\n", "t.toml:1:1: probe: expected a section [probe], got an integer", ""},
      {"[tracing]\nheaders = 5\n", "t.toml:2:11: tracing.headers: expected a table", ""},
      {"[tracing.headers]\n\"bad header\" = \"x\"\n",
       "t.toml:2:16: tracing.headers.bad header: not a valid HTTP header name", ""},
      // TOML syntax.
      {"[probe\ninterval = \"10s\"\n", "t.toml:1:", "TOML syntax error"},
      {"[probe]\ninterval = \"10s\"\ninterval = \"5s\"\n", "t.toml:3:", "TOML syntax error"},
  };
  for (const Case& c : cases) {
    const std::string e = LoadError(c.toml);
    INFO("config:\n" << c.toml << "message: " << e);
    CHECK_THAT(e, Catch::StartsWith(c.prefix) && Catch::Contains(c.fragment));
    CHECK(e.find('\n') == std::string::npos);
  }
}

TEST_CASE("messages never contain the password", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}, {"SECRET_HDR", "topsecret"}};
  const char* cases[] = {
      "[database]\nurl = \"postgresql://u:hunter2@h/d?foo=bar\"\n",
      "[database]\nurl = \"postgresql://u:hunter2@[::1/d\"\n",
      "[database]\nurl = \"postgresql://u:hunter2@h/d\n",      // unterminated string
      "[database]\nurl = \"postgresql://u:hunter2@h/d\" x\n",  // junk after the value
      "[database]\nurl = 'postgresql://u:hunter2@h/d' = 3\n",  // junk after the value
      "[database]\nurl = \"host=h password=hunter2 foo=1\"\n",
      "[database]\nurl = \"postgresql://u:hunter2@h/d\"\nurl_env = \"X\"\n",
      "[database]\nurl = \"postgresql://u:hunter2@h/d\"\n[probe]\ninterval = \"x\"\n",
      "[neon]\nsampling_url = \"postgresql://u:hunter2@h/d?bad=1\"\n",
      "[tracing.headers]\nauth = 5\n",
  };
  for (const char* toml : cases) {
    const std::string e = LoadError(toml);
    INFO(e);
    CHECK(e.find("hunter2") == std::string::npos);
    CHECK(e.find("hunter%32") == std::string::npos);
  }
  // Flags cannot leak either: the URL is loaded, then a flag fails.
  CliOptions cli;
  cli.listen = "bad";
  CHECK(LoadError("", cli).find("hunter2") == std::string::npos);
}

TEST_CASE("tracing headers resolve env: values", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}, {"OTLP_KEY", "s3cr3t-key"}};
  Settings s = Load("[tracing.headers]\nx-api-key = \"env:OTLP_KEY\"\nx-plain = \"v\"\n");
  CHECK(s.tracing.headers.at("x-api-key") == "s3cr3t-key");
  CHECK(s.tracing.headers.at("x-plain") == "v");

  const std::string e = LoadError("[tracing.headers]\nx-api-key = \"env:MISSING_KEY\"\n");
  CHECK_THAT(e, Catch::StartsWith("t.toml:2:13: tracing.headers.x-api-key:") &&
                    Catch::Contains("MISSING_KEY is not set"));
  CHECK_THAT(LoadError("[tracing.headers]\nx = \"env:\"\n"), Catch::Contains("env:"));
  CHECK_THAT(LoadError("[tracing.headers]\nx = \"a\\nb\"\n"), Catch::Contains("line break"));
}

TEST_CASE("flags override the file", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  CliOptions cli;
  cli.listen = "127.0.0.1:0";
  cli.log_level = "debug";
  Settings s = Load("[http]\nlisten = \"0.0.0.0:9999\"\n[log]\nlevel = \"error\"\n", cli);
  CHECK(s.http.listen.ToString() == "127.0.0.1:0");
  CHECK(s.log.level == LogLevel::kDebug);
  CHECK(std::string(LogLevelName(s.log.level)) == "debug");

  cli.listen = "localhost";
  CHECK_THAT(LoadError("", cli), Catch::StartsWith("--listen: \"localhost\" is not HOST:PORT"));
  cli.listen.reset();
  cli.log_level = "loud";
  CHECK_THAT(LoadError("", cli), Catch::StartsWith("--log-level: \"loud\" is not allowed"));
}

TEST_CASE("LoadSettings reports unreadable files", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  CliOptions cli;
  cli.config_path = "/nonexistent/pgvigil.toml";
  try {
    LoadSettings(cli, &FakeEnv);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("/nonexistent/pgvigil.toml") && Catch::Contains("No such file"));
  }
}

CliOptions Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "pgvigil");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

std::string ParseError(std::vector<const char*> args) {
  try {
    Parse(std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError");
  return "";
}

TEST_CASE("ParseCommandLine", "[config][cli]") {
  CliOptions none = Parse({});
  CHECK(none.config_path.empty());
  CHECK_FALSE(none.listen);
  CHECK_FALSE(none.check_config);

  CliOptions a = Parse({"--config", "/etc/pgvigil.toml", "--listen", "[::]:1", "--log-level",
                        "warn", "--check-config"});
  CHECK(a.config_path == "/etc/pgvigil.toml");
  CHECK(a.listen == "[::]:1");
  CHECK(a.log_level == "warn");
  CHECK(a.check_config);

  CliOptions b = Parse({"--config=/x.toml", "--listen=:1", "--log-level=info", "--version"});
  CHECK(b.config_path == "/x.toml");
  CHECK(b.listen == ":1");
  CHECK(b.log_level == "info");
  CHECK(b.version);
  CHECK(Parse({"--help"}).help);
  CHECK(Parse({"-h"}).help);

  CHECK_THAT(ParseError({"--frobnicate"}), Catch::Contains("unknown flag \"--frobnicate\""));
  CHECK_THAT(ParseError({"--confg", "x"}),
             Catch::Contains("\"--confg\"") && Catch::Contains("did you mean --config?"));
  CHECK_THAT(ParseError({"--config"}), Catch::Contains("--config needs a value"));
  CHECK_THAT(ParseError({"--config="}), Catch::Contains("--config needs a value"));
  CHECK_THAT(ParseError({"--config", "--check-config"}), Catch::Contains("needs a value"));
  CHECK_THAT(ParseError({"--version=1"}), Catch::Contains("--version takes no value"));
  CHECK_THAT(
      ParseError({"pgvigil.toml"}),
      Catch::Contains("unexpected argument \"pgvigil.toml\"") && Catch::Contains("--config PATH"));
}

}  // namespace
}  // namespace pgvigil

namespace pgvigil {
namespace {

// What the agent refused at start (after --check-config said ok) is refused by the loader now.
TEST_CASE("the loader refuses what start-up would: Neon without TLS", "[config][settings]") {
  g_env = {{"PGVIGIL_DATABASE_URL", "postgresql://u:pw@ep-cool-1.us-east-2.aws.neon.tech/neondb"}};
  CHECK_THAT(LoadError(""), Catch::Contains("database.url") && Catch::Contains("sslmode") &&
                                !Catch::Contains("pw@"));
  CHECK_NOTHROW(Load("[neon]\nallow_insecure_tls = true\n"));
  g_env["PGSSLMODE"] = "require";
  CHECK_NOTHROW(Load(""));

  g_env = {{"PGVIGIL_DATABASE_URL", kEnvUrl}};
  CHECK_THAT(LoadError("[neon]\nsampling_url = "
                       "\"postgresql://u:pw@ep-cool-1.us-east-2.aws.neon.tech/neondb\"\n"),
             Catch::Contains("neon.sampling_url"));
}

}  // namespace
}  // namespace pgvigil
