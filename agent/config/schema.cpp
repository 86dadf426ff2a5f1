#include "config/schema.hpp"

#include <algorithm>
#include <cctype>

#include "config/database_url.hpp"
#include "config/endpoints.hpp"
#include "config/suggest.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

// A key that sets one member of one section with a reader: (s.*section).*member = read(value).
template <typename Section, typename T, typename Read>
Field Key(std::string_view section, std::string_view key, Section Settings::*sec,
          T Section::*member, Read read) {
  return {section, key, [sec, member, read](const Value& v, Settings& s, Pending&) {
            (s.*sec).*member = read(v);
          }};
}
// One line per key: KEY(section, key, reader).
#define KEY(section, key, read) \
  Key(#section, #key, &Settings::section, &decltype(Settings::section)::key, read)

// Readers, by what the value must be.
auto Duration(Millis min = 1ms) {
  return [min](const Value& v) { return ReadDuration(v, min); };
}
auto Int(int lo, int hi) {
  return [lo, hi](const Value& v) { return ReadInt(v, lo, hi); };
}
auto Bool() {
  return [](const Value& v) { return ReadBool(v); };
}
auto Ratio() {
  return [](const Value& v) { return ReadRatio(v); };
}
auto Text() {
  return [](const Value& v) { return ReadString(v); };
}
auto EnvName() {
  return [](const Value& v) { return ReadEnvName(v); };
}
auto Listen() {
  return [](const Value& v) { return ReadListen(v); };
}
auto OtlpEndpoint() {  // "" = export off
  return [](const Value& v) -> std::optional<HttpEndpoint> {
    const std::string url = ReadString(v);
    if (url.empty()) return std::nullopt;
    auto ep = ParseOtlpEndpoint(url);
    if (!ep) v.Fail(ep.error());
    return *ep;
  };
}
auto NonEmptyText() {
  return [](const Value& v) {
    std::string text = ReadString(v);
    if (text.empty()) v.Fail("must not be empty");
    return text;
  };
}
template <typename E>
auto Enum(std::vector<EnumName<E>> names) {
  return [names = std::move(names)](const Value& v) { return ReadEnum(v, names); };
}
auto Between(Millis lo, Millis hi, std::string_view allowed) {
  return [lo, hi, allowed](const Value& v) {
    const Millis d = ReadDuration(v);
    if (d < lo || d > hi) {
      v.Fail(Quote(FormatDuration(d)) + " is out of range; allowed " + std::string(allowed));
    }
    return d;
  };
}

const std::vector<EnumName<LogFormat>> kLogFormats = {{"logfmt", LogFormat::kLogfmt},
                                                      {"json", LogFormat::kJson}};
const std::vector<EnumName<QueryTextMode>> kQueryTextModes = {
    {"obfuscated", QueryTextMode::kObfuscated},
    {"none", QueryTextMode::kNone},
    {"raw", QueryTextMode::kRaw}};
const std::vector<EnumName<NeonMode>> kNeonModes = {
    {"auto", NeonMode::kAuto}, {"on", NeonMode::kOn}, {"off", NeonMode::kOff}};
const std::vector<EnumName<StatsElection>> kStatsElections = {{"auto", StatsElection::kAuto},
                                                              {"off", StatsElection::kOff}};
const std::vector<EnumName<IdlePolicy>> kIdlePolicies = {
    {"allow_suspend", IdlePolicy::kAllowSuspend}, {"keep_awake", IdlePolicy::kKeepAwake}};

std::string WithoutUrlPrefix(std::string message) {
  constexpr std::string_view kPrefix = "database URL: ";
  if (message.rfind(kPrefix, 0) == 0) message.erase(0, kPrefix.size());
  return message;
}

// Keys that do more than set one member.
void DatabaseUrl(const Value& v, Settings&, Pending& p) {
  std::string url = ReadString(v, /*secret=*/true);
  if (!url.empty()) p.url = std::move(url);  // "" counts as unset (templating-friendly)
}

void DatabaseUrlEnv(const Value& v, Settings&, Pending& p) {
  std::string name = ReadEnvName(v);
  if (!name.empty()) p.url_env = std::move(name);
}

void ApplicationName(const Value& v, Settings& s, Pending& p) {
  s.database.application_name = ReadString(v);
  if (s.database.application_name.empty() || s.database.application_name.size() > 63) {
    v.Fail("must be 1..63 characters");
  }
  p.application_name_set = true;
}

void NeonApiUrl(const Value& v, Settings& s, Pending&) {
  const std::string url = ReadString(v);
  if (url.empty()) v.Fail("must not be empty");
  auto ep = ParseNeonApiUrl(url);
  if (!ep) v.Fail(ep.error());
  s.neon.api_url = std::move(*ep);
}

void NeonSamplingUrl(const Value& v, Settings& s, Pending&) {
  const std::string url = ReadString(v, /*secret=*/true);
  s.neon.sampling_conn.reset();
  if (url.empty()) return;
  auto parsed = ParseDatabaseUrl(url);
  if (!parsed) v.Fail(WithoutUrlPrefix(parsed.error().message));
  s.neon.sampling_conn = std::move(*parsed);
}

// [stats.intervals] / [stats.timeouts]: collector name -> duration.
void CollectorDurations(const Value& v, Pending& p, const char* key, Millis min,
                        std::map<std::string, Millis>& out) {
  const auto* table = v.node.as_table();
  const std::vector<std::string> names(std::begin(kStatsCollectorNames),
                                       std::end(kStatsCollectorNames));
  if (table == nullptr) {
    v.Fail(std::string("expected a table of collector names to durations, e.g. [stats.") + key +
           "] then database = \"10m\"; collectors: " + JoinNames(names));
  }
  for (auto&& [k, node] : *table) {
    const std::string name(k.str());
    const Value cv{
        node, Prefix(Position(p.source, node.source()), "stats." + std::string(key) + "." + name),
        v.env};
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      const std::string near = ClosestMatch(name, names);
      cv.Fail("unknown collector" + (near.empty() ? "" : "; did you mean " + Quote(near) + "?") +
              " Collectors: " + JoinNames(names));
    }
    out[name] = ReadDuration(cv, min);
  }
}

void StatsIntervals(const Value& v, Settings& s, Pending& p) {
  CollectorDurations(v, p, "intervals", 1s, s.stats.intervals);
}

void StatsTimeouts(const Value& v, Settings& s, Pending& p) {
  CollectorDurations(v, p, "timeouts", 10ms, s.stats.timeouts);
}

void TracingHeaders(const Value& v, Settings& s, Pending& p) {
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

}  // namespace

std::string Pending::Where(const std::string& key) const {
  auto it = where.find(key);
  return it != where.end() ? it->second : Prefix(source, key);
}

// The schema: every key the file accepts, how it is read and checked. Cross-field rules are in
// validate.cpp.
const std::vector<Field>& Schema() {
  static const std::vector<Field> kFields = {
      {"database", "url", &DatabaseUrl},
      {"database", "url_env", &DatabaseUrlEnv},
      {"database", "application_name", &ApplicationName},
      KEY(database, connect_timeout, Duration()),

      KEY(pool, size, Int(1, 4)),
      KEY(pool, max_lifetime, Duration()),
      KEY(pool, idle_timeout, Duration()),
      KEY(pool, validate_after, Duration(0ms)),
      KEY(pool, backoff_initial, Duration()),
      KEY(pool, backoff_max, Duration()),
      KEY(pool, misconfigured_backoff, Duration()),

      KEY(probe, interval, Duration()),
      KEY(probe, timeout, Duration()),
      KEY(probe, failure_threshold, Int(1, 100)),
      KEY(probe, success_threshold, Int(1, 100)),
      KEY(probe, degraded_latency, Duration()),
      KEY(probe, reuse_traffic, Bool()),

      KEY(http, listen, Listen()),
      KEY(http, readyz_requires_db, Bool()),
      KEY(http, startupz_requires_probe, Bool()),
      KEY(http, shutdown_timeout, Duration()),
      KEY(http, threads, Int(1, 64)),

      KEY(log, level, Enum(kLogLevels)),
      KEY(log, format, Enum(kLogFormats)),

      KEY(sampling, enabled, Bool()),
      KEY(sampling, statements_interval, Duration()),
      KEY(sampling, activity_interval, Duration()),
      KEY(sampling, slow_threshold, Duration()),
      KEY(sampling, cooldown, Duration(0ms)),
      KEY(sampling, top_n, Int(1, 1000)),
      KEY(sampling, query_text, Enum(kQueryTextModes)),
      KEY(sampling, max_query_length, Int(64, 65536)),
      KEY(sampling, statement_timeout, Duration()),
      KEY(sampling, text_cache_size, Int(1, 100'000)),
      KEY(sampling, top_n_labels, Int(0, 100)),
      KEY(sampling, history, Between(1min, 24h, "1m..24h")),

      KEY(stats, enabled, Bool()),
      KEY(stats, interval, Duration()),
      KEY(stats, election, Enum(kStatsElections)),
      {"stats", "intervals", &StatsIntervals},
      {"stats", "timeouts", &StatsTimeouts},

      KEY(tracing, otlp_endpoint, OtlpEndpoint()),
      {"tracing", "headers", &TracingHeaders},
      KEY(tracing, sample_ratio, Ratio()),
      KEY(tracing, buffer_spans, Int(1, 100'000)),
      KEY(tracing, service_name, NonEmptyText()),
      KEY(tracing, export_interval, Duration()),
      KEY(tracing, export_timeout, Duration()),
      KEY(tracing, queue_spans, Int(1, 1'000'000)),

      KEY(neon, mode, Enum(kNeonModes)),
      KEY(neon, idle_policy, Enum(kIdlePolicies)),
      KEY(neon, suspend_after, Duration()),
      {"neon", "api_url", &NeonApiUrl},
      KEY(neon, api_key_env, EnvName()),
      KEY(neon, project_id, Text()),
      KEY(neon, endpoint_id, Text()),
      // Neon's API allows ~700 requests a minute per account; stay well clear.
      KEY(neon, api_poll_interval, Duration(1s)),
      KEY(neon, wake_timeout, Duration()),
      KEY(neon, wake_check_interval, Duration()),
      {"neon", "sampling_url", &NeonSamplingUrl},
      KEY(neon, allow_insecure_tls, Bool()),
      KEY(neon, endpoint_option, Bool()),
  };
  return kFields;
}

#undef KEY

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

namespace {

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

}  // namespace

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

}  // namespace pgvigil
