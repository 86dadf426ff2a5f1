#include "config/settings.hpp"

#include "config/cli.hpp"
#include "config/schema.hpp"
#include "config/toml_reader.hpp"
#include "config/validate.hpp"

// The loader, in order: the TOML reader (toml_reader.cpp) parses the file, the schema table
// (schema.cpp) reads each key, then the whole-file checks (validate.cpp), then the flags
// (cli.cpp).
namespace pgvigil {
namespace {

Settings Build(const toml::table& root, std::string_view source, const CliOptions& cli,
               EnvLookup env) {
  Settings s;
  Pending p{std::string(source), env, {}, std::nullopt, std::nullopt, false};
  ReadTable(root, source, s, p);
  CheckCrossField(s, p);
  ResolveDatabaseUrl(s, p);
  ApplyFlags(s, cli);
  CheckTargets(s, env);
  return s;
}

}  // namespace

Settings LoadSettingsFromString(std::string_view toml_text, std::string_view source_name,
                                const CliOptions& cli, EnvLookup env) {
  return Build(ParseToml(toml_text, source_name), source_name, cli, env);
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
