#pragma once
// The TOML side of the config loader: reading the file (bounded), parsing it (secrets scrubbed
// from syntax errors), and typed readers that turn one value into a checked C++ value or throw
// ConfigError naming file:line:column, the key, the problem and what is allowed.
// Internal to config/; pure functions, thread-safe.
#include <toml++/toml.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/duration.hpp"
#include "config/listen_address.hpp"
#include "config/settings.hpp"
#include "util/quote.hpp"

namespace pgvigil {

// One value from the file with its location, for messages.
struct Value {
  const toml::node& node;
  std::string where;  // "file:line:col: section.key"
  EnvLookup env;

  [[noreturn]] void Fail(const std::string& problem) const;
};

std::string TypeName(const toml::node& node);  // "a string", "an integer", ...
// "file:line:col" or "file" or "" (position unknown, or no file at all).
std::string Position(std::string_view source, const toml::source_region& region);
std::string Prefix(const std::string& position, std::string_view subject);

std::string ReadString(const Value& v, bool secret = false);  // secret: never echo the value
bool ReadBool(const Value& v);
int ReadInt(const Value& v, int lo, int hi);
double ReadRatio(const Value& v);  // 0.0..1.0
// min 0ms allows "0s"; the default 1ms means "greater than 0". At most 30 days.
Millis ReadDuration(const Value& v, Millis min = Millis(1));
bool IsEnvName(std::string_view name);
std::string ReadEnvName(const Value& v);  // "" or an environment variable name
ListenAddress ReadListen(const Value& v);

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

std::string JoinEnumNames(const std::vector<std::string_view>& names);
[[noreturn]] void FailEnum(const Value& v, const std::vector<std::string_view>& names);

template <typename E>
E ReadEnum(const Value& v, const std::vector<EnumName<E>>& names) {
  std::vector<std::string_view> allowed;
  for (const auto& n : names) allowed.push_back(n.name);
  if (const auto* s = v.node.as_string()) {
    for (const auto& n : names) {
      if (n.name == s->get()) return n.value;
    }
  }
  FailEnum(v, allowed);
}

extern const std::vector<EnumName<LogLevel>> kLogLevels;

// The text of a config file: a regular file of at most 1 MiB, else a ConfigError.
std::string ReadConfigFile(const std::string& path);
// toml::parse, a syntax error turned into a ConfigError without any secret of the text.
toml::table ParseToml(std::string_view text, std::string_view source_name);

}  // namespace pgvigil
