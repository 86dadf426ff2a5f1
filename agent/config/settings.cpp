#include "config/settings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "config/suggest.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

constexpr const char* kExampleUrl = "postgresql://user:password@host:5432/dbname?sslmode=require";
constexpr const char* kDurationExamples = "use e.g. \"250ms\", \"10s\", \"1m\", \"1h30m\"";
// Everything is bounded: no duration may overflow a deadline computed from it.
constexpr Millis kMaxDuration = 30 * 24h;
// A config file is a few KiB; anything far larger is a mistake (e.g. --config /dev/zero).
constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr const char* kDefaultUrlEnvs[] = {"PGVIGIL_DATABASE_URL", "DATABASE_URL"};

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// "file:line:col" or "file" or "" (position unknown, or no file at all).
std::string Position(std::string_view source, const toml::source_region& region) {
  std::string out(source);
  if (region.begin.line > 0 && !out.empty()) {
    out += ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
  }
  return out;
}

std::string Prefix(const std::string& position, std::string_view subject) {
  return position.empty() ? std::string(subject) : position + ": " + std::string(subject);
}

// One value from the file with its location, for messages.
struct Value {
  const toml::node& node;
  std::string where;  // "file:line:col: section.key"
  EnvLookup env;

  [[noreturn]] void Fail(const std::string& problem) const {
    throw ConfigError(where + ": " + problem);
  }
};

std::string ReadString(const Value& v, bool secret = false) {
  if (const auto* s = v.node.as_string()) return s->get();
  v.Fail("expected a string, got " + TypeName(v.node) +
         (secret ? "" : "; quote the value, e.g. key = \"...\""));
}

bool ReadBool(const Value& v) {
  if (const auto* b = v.node.as_boolean()) return b->get();
  std::string hint;
  if (const auto* s = v.node.as_string()) {
    if (s->get() == "true" || s->get() == "false")
      hint = " (write " + s->get() + " without quotes)";
  }
  v.Fail("expected true or false, got " + TypeName(v.node) + hint);
}

int ReadInt(const Value& v, int lo, int hi) {
  const std::string allowed = "; allowed " + std::to_string(lo) + ".." + std::to_string(hi);
  const auto* i = v.node.as_integer();
  if (i == nullptr) v.Fail("expected an integer, got " + TypeName(v.node) + allowed);
  if (i->get() < lo || i->get() > hi)
    v.Fail(std::to_string(i->get()) + " is out of range" + allowed);
  return static_cast<int>(i->get());
}

double ReadRatio(const Value& v) {
  double d = 0;
  if (const auto* f = v.node.as_floating_point()) {
    d = f->get();
  } else if (const auto* i = v.node.as_integer()) {
    d = static_cast<double>(i->get());
  } else {
    v.Fail("expected a number, got " + TypeName(v.node) + "; allowed 0.0..1.0");
  }
  if (!(d >= 0.0 && d <= 1.0)) v.Fail(std::to_string(d) + " is out of range; allowed 0.0..1.0");
  return d;
}

std::optional<Millis> CheckDuration(std::string_view text, Millis min, std::string* error) {
  auto d = ParseDuration(text, error);
  if (!d) return std::nullopt;
  if (*d < min) {
    *error = Quote(text) + (min == 1ms ? " must be greater than 0" : " is too short") +
             "; allowed " + FormatDuration(min) + ".." + FormatDuration(kMaxDuration);
    return std::nullopt;
  }
  if (*d > kMaxDuration) {
    *error = Quote(text) + " is too long; allowed at most " + FormatDuration(kMaxDuration);
    return std::nullopt;
  }
  return d;
}

// min 0ms allows "0s"; the default 1ms means "greater than 0".
Millis ReadDuration(const Value& v, Millis min = 1ms) {
  const auto* s = v.node.as_string();
  if (s == nullptr) {
    v.Fail("expected a duration string, got " + TypeName(v.node) + "; " + kDurationExamples);
  }
  std::string error;
  auto d = CheckDuration(s->get(), min, &error);
  if (!d) v.Fail(error);
  return *d;
}

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

template <typename E>
E ReadEnum(const Value& v, std::initializer_list<EnumName<E>> names) {
  std::vector<std::string> allowed;
  for (const auto& n : names) allowed.emplace_back(n.name);
  const auto* s = v.node.as_string();
  if (s == nullptr) {
    v.Fail("expected a string, got " + TypeName(v.node) + "; allowed " + JoinNames(allowed));
  }
  for (const auto& n : names) {
    if (n.name == s->get()) return n.value;
  }
  v.Fail(Quote(s->get()) + " is not allowed; allowed " + JoinNames(allowed));
}

const std::initializer_list<EnumName<LogLevel>> kLogLevels = {
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},
    {"error", LogLevel::kError},
};

bool IsEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string ReadEnvName(const Value& v) {
  std::string name = ReadString(v);
  if (!name.empty() && !IsEnvName(name)) {
    v.Fail(Quote(name) + " is not an environment variable name; use letters, digits and _");
  }
  return name;
}

std::string ReadHttpUrl(const Value& v) {
  std::string url = ReadString(v);
  if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    v.Fail("expected an http:// or https:// URL");
  }
  return url;
}

// "" when fine, else the problem.
std::string CheckListen(std::string_view listen) {
  const std::string problem =
      Quote(listen) +
      " is not HOST:PORT; use e.g. \"0.0.0.0:9188\", \"127.0.0.1:9188\" or \"[::]:9188\" (port "
      "0..65535)";
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return problem;
  std::string_view host = listen.substr(0, colon);
  const std::string_view port = listen.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return problem;
  } else if (host.find(':') != std::string_view::npos) {
    return problem;  // a bare IPv6 address needs brackets
  }
  if (port.empty() || port.size() > 5) return problem;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return problem;
    value = value * 10 + (c - '0');
  }
  if (value > 65535) return problem;
  return "";
}

std::string ReadListen(const Value& v) {
  std::string listen = ReadString(v);
  if (std::string problem = CheckListen(listen); !problem.empty()) v.Fail(problem);
  return listen;
}

std::string WithoutUrlPrefix(std::string message) {
  constexpr std::string_view kPrefix = "database URL: ";
  if (message.rfind(kPrefix, 0) == 0) message.erase(0, kPrefix.size());
  return message;
}

// Values that need the whole file (cross-field checks, the URL) wait here.
struct Pending {
  std::string source;
  EnvLookup env;
  std::map<std::string, std::string> where;  // "section.key" -> its message prefix
  std::optional<std::string> url;
  std::optional<std::string> url_env;
  bool application_name_set = false;

  std::string Where(const std::string& key) const {
    auto it = where.find(key);
    return it != where.end() ? it->second : Prefix(source, key);
  }
};

using Apply = void (*)(const Value&, Settings&, Pending&);
struct Field {
  std::string_view section;
  std::string_view key;
  Apply apply;
};

void ReadHeaders(const Value& v, Settings& s, Pending& p) {
  const auto* table = v.node.as_table();
  if (table == nullptr) {
    v.Fail(
        "expected a table of header names to strings, e.g. [tracing.headers] then "
        "x-api-key = \"env:OTLP_API_KEY\"");
  }
  for (auto&& [key, node] : *table) {
    const std::string name(key.str());
    const Value hv{node, Prefix(Position(p.source, node.source()), "tracing.headers." + name),
                   v.env};
    const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    });
    if (!token) hv.Fail("not a valid HTTP header name");
    // Header values are usually API keys: never echo them.
    std::string value = ReadString(hv, /*secret=*/true);
    if (value.rfind("env:", 0) == 0) {
      const std::string env_name = value.substr(4);
      if (!IsEnvName(env_name))
        hv.Fail("\"env:\" must be followed by an environment variable name");
      auto resolved = v.env(env_name.c_str());
      if (!resolved) {
        hv.Fail("environment variable " + env_name + " is not set; export it or remove the header");
      }
      value = *resolved;
    }
    if (value.find_first_of("\r\n") != std::string::npos) hv.Fail("value contains a line break");
    s.tracing.headers[name] = value;
  }
}

// The schema: every key the file accepts, how it is read and checked.
const std::vector<Field>& Schema() {
  static const std::vector<Field> kFields = {
      {"database", "url",
       [](const Value& v, Settings&, Pending& p) {
         std::string url = ReadString(v, /*secret=*/true);
         if (!url.empty()) p.url = std::move(url);  // "" counts as unset (templating-friendly)
       }},
      {"database", "url_env",
       [](const Value& v, Settings&, Pending& p) {
         std::string name = ReadEnvName(v);
         if (!name.empty()) p.url_env = std::move(name);
       }},
      {"database", "application_name",
       [](const Value& v, Settings& s, Pending& p) {
         s.database.application_name = ReadString(v);
         if (s.database.application_name.empty() || s.database.application_name.size() > 63) {
           v.Fail("must be 1..63 characters");
         }
         p.application_name_set = true;
       }},
      {"database", "connect_timeout",
       [](const Value& v, Settings& s, Pending&) { s.database.connect_timeout = ReadDuration(v); }},

      {"pool", "size",
       [](const Value& v, Settings& s, Pending&) { s.pool.size = ReadInt(v, 1, 4); }},
      {"pool", "max_lifetime",
       [](const Value& v, Settings& s, Pending&) { s.pool.max_lifetime = ReadDuration(v); }},
      {"pool", "idle_timeout",
       [](const Value& v, Settings& s, Pending&) { s.pool.idle_timeout = ReadDuration(v); }},
      {"pool", "validate_after",
       [](const Value& v, Settings& s, Pending&) { s.pool.validate_after = ReadDuration(v, 0ms); }},
      {"pool", "backoff_initial",
       [](const Value& v, Settings& s, Pending&) { s.pool.backoff_initial = ReadDuration(v); }},
      {"pool", "backoff_max",
       [](const Value& v, Settings& s, Pending&) { s.pool.backoff_max = ReadDuration(v); }},
      {"pool", "misconfigured_backoff",
       [](const Value& v, Settings& s, Pending&) {
         s.pool.misconfigured_backoff = ReadDuration(v);
       }},

      {"probe", "interval",
       [](const Value& v, Settings& s, Pending&) { s.probe.interval = ReadDuration(v); }},
      {"probe", "timeout",
       [](const Value& v, Settings& s, Pending&) { s.probe.timeout = ReadDuration(v); }},
      {"probe", "failure_threshold",
       [](const Value& v, Settings& s, Pending&) {
         s.probe.failure_threshold = ReadInt(v, 1, 100);
       }},
      {"probe", "success_threshold",
       [](const Value& v, Settings& s, Pending&) {
         s.probe.success_threshold = ReadInt(v, 1, 100);
       }},
      {"probe", "degraded_latency",
       [](const Value& v, Settings& s, Pending&) { s.probe.degraded_latency = ReadDuration(v); }},

      {"http", "listen",
       [](const Value& v, Settings& s, Pending&) { s.http.listen = ReadListen(v); }},
      {"http", "readyz_requires_db",
       [](const Value& v, Settings& s, Pending&) { s.http.readyz_requires_db = ReadBool(v); }},
      {"http", "startupz_requires_probe",
       [](const Value& v, Settings& s, Pending&) { s.http.startupz_requires_probe = ReadBool(v); }},
      {"http", "shutdown_timeout",
       [](const Value& v, Settings& s, Pending&) { s.http.shutdown_timeout = ReadDuration(v); }},
      {"http", "threads",
       [](const Value& v, Settings& s, Pending&) { s.http.threads = ReadInt(v, 1, 64); }},

      {"log", "level",
       [](const Value& v, Settings& s, Pending&) { s.log.level = ReadEnum(v, kLogLevels); }},
      {"log", "format",
       [](const Value& v, Settings& s, Pending&) {
         s.log.format =
             ReadEnum<LogFormat>(v, {{"logfmt", LogFormat::kLogfmt}, {"json", LogFormat::kJson}});
       }},

      {"sampling", "enabled",
       [](const Value& v, Settings& s, Pending&) { s.sampling.enabled = ReadBool(v); }},
      {"sampling", "statements_interval",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.statements_interval = ReadDuration(v);
       }},
      {"sampling", "activity_interval",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.activity_interval = ReadDuration(v);
       }},
      {"sampling", "slow_threshold",
       [](const Value& v, Settings& s, Pending&) { s.sampling.slow_threshold = ReadDuration(v); }},
      {"sampling", "cooldown",
       [](const Value& v, Settings& s, Pending&) { s.sampling.cooldown = ReadDuration(v, 0ms); }},
      {"sampling", "top_n",
       [](const Value& v, Settings& s, Pending&) { s.sampling.top_n = ReadInt(v, 1, 1000); }},
      {"sampling", "query_text",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.query_text =
             ReadEnum<QueryTextMode>(v, {{"obfuscated", QueryTextMode::kObfuscated},
                                         {"none", QueryTextMode::kNone},
                                         {"raw", QueryTextMode::kRaw}});
       }},
      {"sampling", "max_query_length",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.max_query_length = ReadInt(v, 64, 65536);
       }},
      {"sampling", "statement_timeout",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.statement_timeout = ReadDuration(v);
       }},
      {"sampling", "text_cache_size",
       [](const Value& v, Settings& s, Pending&) {
         s.sampling.text_cache_size = ReadInt(v, 1, 100'000);
       }},
      {"sampling", "top_n_labels",
       [](const Value& v, Settings& s, Pending&) { s.sampling.top_n_labels = ReadInt(v, 0, 100); }},
      {"sampling", "history",
       [](const Value& v, Settings& s, Pending&) {
         const Millis d = ReadDuration(v);
         if (d < 1min || d > 24h)
           v.Fail(Quote(FormatDuration(d)) + " is out of range; allowed 1m..24h");
         s.sampling.history = d;
       }},

      {"stats", "enabled",
       [](const Value& v, Settings& s, Pending&) { s.stats.enabled = ReadBool(v); }},
      {"stats", "interval",
       [](const Value& v, Settings& s, Pending&) { s.stats.interval = ReadDuration(v); }},
      {"stats", "election",
       [](const Value& v, Settings& s, Pending&) {
         s.stats.election = ReadEnum<StatsElection>(
             v, {{"auto", StatsElection::kAuto}, {"off", StatsElection::kOff}});
       }},

      {"tracing", "otlp_endpoint",
       [](const Value& v, Settings& s, Pending&) { s.tracing.otlp_endpoint = ReadHttpUrl(v); }},
      {"tracing", "headers", &ReadHeaders},
      {"tracing", "sample_ratio",
       [](const Value& v, Settings& s, Pending&) { s.tracing.sample_ratio = ReadRatio(v); }},
      {"tracing", "buffer_spans",
       [](const Value& v, Settings& s, Pending&) {
         s.tracing.buffer_spans = ReadInt(v, 1, 100'000);
       }},
      {"tracing", "service_name",
       [](const Value& v, Settings& s, Pending&) {
         s.tracing.service_name = ReadString(v);
         if (s.tracing.service_name.empty()) v.Fail("must not be empty");
       }},
      {"tracing", "export_interval",
       [](const Value& v, Settings& s, Pending&) { s.tracing.export_interval = ReadDuration(v); }},
      {"tracing", "export_timeout",
       [](const Value& v, Settings& s, Pending&) { s.tracing.export_timeout = ReadDuration(v); }},
      {"tracing", "queue_spans",
       [](const Value& v, Settings& s, Pending&) {
         s.tracing.queue_spans = ReadInt(v, 1, 1'000'000);
       }},

      {"neon", "mode",
       [](const Value& v, Settings& s, Pending&) {
         s.neon.mode = ReadEnum<NeonMode>(
             v, {{"auto", NeonMode::kAuto}, {"on", NeonMode::kOn}, {"off", NeonMode::kOff}});
       }},
      {"neon", "idle_policy",
       [](const Value& v, Settings& s, Pending&) {
         s.neon.idle_policy = ReadEnum<IdlePolicy>(v, {{"allow_suspend", IdlePolicy::kAllowSuspend},
                                                       {"keep_awake", IdlePolicy::kKeepAwake}});
       }},
      {"neon", "suspend_after",
       [](const Value& v, Settings& s, Pending&) { s.neon.suspend_after = ReadDuration(v); }},
      {"neon", "api_url",
       [](const Value& v, Settings& s, Pending&) {
         s.neon.api_url = ReadHttpUrl(v);
         if (s.neon.api_url.empty()) v.Fail("must not be empty");
       }},
      {"neon", "api_key_env",
       [](const Value& v, Settings& s, Pending&) { s.neon.api_key_env = ReadEnvName(v); }},
      {"neon", "project_id",
       [](const Value& v, Settings& s, Pending&) { s.neon.project_id = ReadString(v); }},
      {"neon", "endpoint_id",
       [](const Value& v, Settings& s, Pending&) { s.neon.endpoint_id = ReadString(v); }},
      {"neon", "api_poll_interval",
       // Neon's API allows ~700 requests a minute per account; stay well clear.
       [](const Value& v, Settings& s, Pending&) {
         s.neon.api_poll_interval = ReadDuration(v, 1s);
       }},
      {"neon", "wake_timeout",
       [](const Value& v, Settings& s, Pending&) { s.neon.wake_timeout = ReadDuration(v); }},
      {"neon", "wake_check_interval",
       [](const Value& v, Settings& s, Pending&) { s.neon.wake_check_interval = ReadDuration(v); }},
      {"neon", "sampling_url",
       [](const Value& v, Settings& s, Pending&) {
         const std::string url = ReadString(v, /*secret=*/true);
         s.neon.sampling_conn.reset();
         if (url.empty()) return;
         auto parsed = ParseDatabaseUrl(url);
         if (parsed.error) v.Fail(WithoutUrlPrefix(parsed.error->message));
         s.neon.sampling_conn = std::move(*parsed.params);
       }},
      {"neon", "allow_insecure_tls",
       [](const Value& v, Settings& s, Pending&) { s.neon.allow_insecure_tls = ReadBool(v); }},
      {"neon", "endpoint_option",
       [](const Value& v, Settings& s, Pending&) { s.neon.endpoint_option = ReadBool(v); }},
  };
  return kFields;
}

std::vector<std::string> Sections() {
  std::vector<std::string> out;
  for (const Field& f : Schema()) {
    if (std::find(out.begin(), out.end(), f.section) == out.end()) out.emplace_back(f.section);
  }
  return out;
}

std::vector<std::string> KeysOf(std::string_view section) {
  std::vector<std::string> out;
  for (const Field& f : Schema()) {
    if (f.section == section) out.emplace_back(f.key);
  }
  return out;
}

// Entries of a table in file order, so the first error reported is the first in the file.
std::vector<std::pair<const toml::key*, const toml::node*>> InFileOrder(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [key, node] : t) out.emplace_back(&key, &node);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return x.line != y.line ? x.line < y.line : x.column < y.column;
  });
  return out;
}

[[noreturn]] void UnknownSection(const std::string& where, const std::string& name,
                                 const toml::node& node) {
  const std::vector<std::string> sections = Sections();
  std::string msg = where + ": unknown ";
  if (node.is_table()) {
    msg += "section [" + name + "]";
    if (auto close = ClosestMatch(name, sections); !close.empty()) {
      msg += " (did you mean [" + close + "]?)";
    }
    throw ConfigError(msg + "; sections are " + JoinNames(sections));
  }
  msg += "top-level key '" + name + "'";
  for (const std::string& section : sections) {
    const auto keys = KeysOf(section);
    if (std::find(keys.begin(), keys.end(), name) != keys.end()) {
      throw ConfigError(msg + "; it belongs in a section: put it under [" + section + "]");
    }
  }
  throw ConfigError(msg + "; keys go in sections: " + JoinNames(sections));
}

[[noreturn]] void UnknownKey(const std::string& where, const std::string& section,
                             const std::string& key) {
  const std::vector<std::string> keys = KeysOf(section);
  std::string msg = where + ": unknown key";
  if (auto close = ClosestMatch(key, keys); !close.empty()) {
    msg += " (did you mean '" + close + "'?)";
  } else {
    for (const std::string& other : Sections()) {
      const auto other_keys = KeysOf(other);
      if (other != section &&
          std::find(other_keys.begin(), other_keys.end(), key) != other_keys.end()) {
        msg += " ('" + key + "' belongs in [" + other + "])";
        break;
      }
    }
  }
  throw ConfigError(msg + "; keys in [" + section + "]: " + JoinNames(keys));
}

void ReadTable(const toml::table& root, std::string_view source, Settings& s, Pending& p) {
  for (const auto& [section_key, section_node] : InFileOrder(root)) {
    const std::string section(section_key->str());
    const std::string section_pos = Position(source, section_key->source());
    const std::vector<std::string> sections = Sections();
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      UnknownSection(section_pos.empty() ? std::string(source) : section_pos, section,
                     *section_node);
    }
    const auto* table = section_node->as_table();
    if (table == nullptr) {
      throw ConfigError(Prefix(section_pos, section) + ": expected a section [" + section +
                        "], got " + TypeName(*section_node));
    }
    for (const auto& [key, node] : InFileOrder(*table)) {
      const std::string name = section + "." + std::string(key->str());
      const std::string where = Prefix(Position(source, key->source()), name);
      const std::string_view key_str = key->str();  // clang 14 cannot capture bindings
      auto field = std::find_if(Schema().begin(), Schema().end(), [&](const Field& f) {
        return f.section == section && f.key == key_str;
      });
      if (field == Schema().end()) UnknownKey(where, section, std::string(key->str()));
      // Values carry their own position (after the '='), which is what an editor jumps to.
      const Value value{*node, Prefix(Position(source, node->source()), name), p.env};
      p.where[name] = value.where;
      field->apply(value, s, p);
    }
  }
}

void CheckCrossField(const Settings& s, const Pending& p) {
  if (s.probe.timeout >= s.probe.interval) {
    const std::string key = p.where.count("probe.timeout") ? "probe.timeout" : "probe.interval";
    throw ConfigError(p.Where(key) + ": probe.timeout (" + FormatDuration(s.probe.timeout) +
                      ") must be shorter than probe.interval (" + FormatDuration(s.probe.interval) +
                      "); raise probe.interval or lower probe.timeout");
  }
  if (s.sampling.history < s.sampling.statements_interval) {
    const std::string key =
        p.where.count("sampling.history") ? "sampling.history" : "sampling.statements_interval";
    throw ConfigError(p.Where(key) + ": sampling.history (" + FormatDuration(s.sampling.history) +
                      ") must be at least sampling.statements_interval (" +
                      FormatDuration(s.sampling.statements_interval) +
                      "); raise sampling.history or lower sampling.statements_interval");
  }
  if (s.pool.backoff_initial > s.pool.backoff_max) {
    const std::string key =
        p.where.count("pool.backoff_initial") ? "pool.backoff_initial" : "pool.backoff_max";
    throw ConfigError(
        p.Where(key) + ": pool.backoff_initial (" + FormatDuration(s.pool.backoff_initial) +
        ") must not exceed pool.backoff_max (" + FormatDuration(s.pool.backoff_max) + ")");
  }
}

void ResolveDatabaseUrl(Settings& s, const Pending& p) {
  if (p.url && p.url_env) {
    throw ConfigError(p.Where("database.url_env") +
                      ": set either database.url or database.url_env, not both");
  }
  std::string url;
  std::string where;
  if (p.url) {
    url = *p.url;
    where = p.Where("database.url");
    s.database.url_env.clear();
  } else if (p.url_env) {
    auto value = p.env(p.url_env->c_str());
    if (!value || value->empty()) {
      throw ConfigError(p.Where("database.url_env") + ": environment variable " + *p.url_env +
                        " is not set or empty; export it with the database URL, e.g. " +
                        kExampleUrl);
    }
    url = *value;
    where = "environment variable " + *p.url_env + " (named by database.url_env)";
    s.database.url_env = *p.url_env;
  } else {
    for (const char* name : kDefaultUrlEnvs) {
      auto value = p.env(name);
      if (value && !value->empty()) {
        url = *value;
        where = std::string("environment variable ") + name;
        s.database.url_env = name;
        break;
      }
    }
    if (url.empty()) {
      throw ConfigError(Prefix(p.source, "database.url") +
                        ": no database URL; set the PGVIGIL_DATABASE_URL (or DATABASE_URL) "
                        "environment variable, or database.url or database.url_env in the "
                        "config file, e.g. " +
                        kExampleUrl);
    }
  }
  ParsedUrl parsed = ParseDatabaseUrl(url);
  if (parsed.error) {
    throw ConfigError(where + ": " + WithoutUrlPrefix(parsed.error->message));
  }
  s.database.conn = std::move(*parsed.params);
  // The URL's own application_name wins: the user wrote it next to the credentials on purpose.
  if (std::string from_url = s.database.conn.Get("application_name"); !from_url.empty()) {
    s.database.application_name = from_url;
  } else {
    s.database.conn.Set("application_name", s.database.application_name);
  }
  if (s.neon.sampling_conn && s.neon.sampling_conn->Get("application_name").empty()) {
    s.neon.sampling_conn->Set("application_name", s.database.application_name);
  }
}

void ApplyFlags(Settings& s, const CliOptions& cli) {
  if (cli.listen) {
    if (std::string problem = CheckListen(*cli.listen); !problem.empty()) {
      throw ConfigError("--listen: " + problem);
    }
    s.http.listen = *cli.listen;
  }
  if (cli.log_level) {
    bool found = false;
    for (const auto& level : kLogLevels) {
      if (level.name == *cli.log_level) {
        s.log.level = level.value;
        found = true;
      }
    }
    if (!found) {
      throw ConfigError("--log-level: " + Quote(*cli.log_level) +
                        " is not allowed; allowed debug, info, warn, error");
    }
  }
}

Settings Build(const toml::table& root, std::string_view source, const CliOptions& cli,
               EnvLookup env) {
  Settings s;
  Pending p{std::string(source), env, {}, std::nullopt, std::nullopt, false};
  ReadTable(root, source, s, p);
  CheckCrossField(s, p);
  ResolveDatabaseUrl(s, p);
  ApplyFlags(s, cli);
  return s;
}

}  // namespace

std::optional<std::string> ProcessEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

CliOptions ParseCommandLine(int argc, const char* const* argv) {
  CliOptions cli;
  const std::vector<std::string> flags = {"--config", "--check-config", "--version",
                                          "--help",   "--listen",       "--log-level"};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string name = arg;
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto take_value = [&](const char* example) -> std::string {
      if (value) {
        if (value->empty()) throw ConfigError(name + " needs a value: " + name + " " + example);
        return *value;
      }
      if (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("--", 0) == 0) {
        throw ConfigError(name + " needs a value: " + name + " " + example);
      }
      return argv[++i];
    };
    auto no_value = [&] {
      if (value) throw ConfigError(name + " takes no value");
    };
    if (name == "--config") {
      cli.config_path = take_value("PATH");
    } else if (name == "--listen") {
      cli.listen = take_value("HOST:PORT");
    } else if (name == "--log-level") {
      cli.log_level = take_value("debug|info|warn|error");
    } else if (name == "--check-config") {
      no_value();
      cli.check_config = true;
    } else if (name == "--version") {
      no_value();
      cli.version = true;
    } else if (name == "--help" || name == "-h") {
      no_value();
      cli.help = true;
    } else if (name.rfind("-", 0) == 0) {
      std::string msg = "unknown flag \"" + name + "\"";
      if (auto close = ClosestMatch(name, flags); !close.empty()) {
        msg += " (did you mean " + close + "?)";
      }
      throw ConfigError(msg + "; flags are " + JoinNames(flags));
    } else {
      throw ConfigError("unexpected argument \"" + arg +
                        "\"; pass the config file as --config PATH");
    }
  }
  return cli;
}

namespace {

// The text of a config file: a regular file of at most kMaxConfigBytes, else a ConfigError.
std::string ReadConfigFile(const std::string& path) {
  auto fail = [&](const std::string& why) -> ConfigError {
    return ConfigError("cannot read config file \"" + path + "\": " + why +
                       "; pass --config with the path of a TOML file, or omit --config to run on "
                       "defaults and environment variables");
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw fail(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw fail("it is a directory");
  if (!S_ISREG(st.st_mode)) throw fail("it is not a regular file (a device, FIFO or socket)");
  if (st.st_size > static_cast<off_t>(kMaxConfigBytes)) {
    throw fail("it is " + std::to_string(st.st_size) + " bytes, over the limit of " +
               std::to_string(kMaxConfigBytes) + " bytes");
  }
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // The file may grow while being read: the bound holds for what is read, too.
    if (text.size() > kMaxConfigBytes) {
      throw fail("it is over the limit of " + std::to_string(kMaxConfigBytes) + " bytes");
    }
  }
  return text;
}

}  // namespace

Settings LoadSettingsFromString(std::string_view toml_text, std::string_view source_name,
                                const CliOptions& cli, EnvLookup env) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::string position = Position(source_name, e.source());
    if (position.empty()) position = "config";
    // toml++ may quote a fragment of the offending line, which could hold a password.
    throw ConfigError(
        ScrubSecrets(position + ": TOML syntax error: " + std::string(e.description()),
                     GuessSecretsInText(toml_text)));
  }
  return Build(root, source_name, cli, env);
}

Settings LoadSettings(const CliOptions& cli, EnvLookup env) {
  if (cli.config_path.empty()) return Build(toml::table{}, "", cli, env);
  Settings s = LoadSettingsFromString(ReadConfigFile(cli.config_path), cli.config_path, cli, env);
  s.config_path = cli.config_path;
  return s;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::vector<std::string> KnownConfigKeys() {
  std::vector<std::string> out;
  for (const Field& f : Schema()) out.push_back(std::string(f.section) + "." + std::string(f.key));
  return out;
}

}  // namespace pgvigil
