#include "config/cli.hpp"

#include <cstdlib>

#include "config/suggest.hpp"
#include "config/toml_reader.hpp"

namespace pgvigil {

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

void ApplyFlags(Settings& s, const CliOptions& cli) {
  if (cli.listen) {
    auto listen = ParseListenAddress(*cli.listen);
    if (!listen) throw ConfigError("--listen: " + listen.error());
    s.http.listen = *listen;
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

}  // namespace pgvigil
