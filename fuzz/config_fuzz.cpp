// libFuzzer target for the config loader (TOML text -> validated Settings). Any input must give
// Settings or a ConfigError with a one-line message; no other exception, no crash, and a database
// password from the environment or the file never appears in the message. Accepted Settings must
// satisfy the documented bounds. The first input byte picks a shape: raw text, or text after a
// [database] table holding a URL with a known password. Built by fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace {

constexpr std::string_view kSecret = "Fz9SecretPw";

std::optional<std::string> NoEnv(const char*) { return std::nullopt; }

std::optional<std::string> UrlEnv(const char* name) {
  if (std::string_view(name) == "PGVIGIL_DATABASE_URL" || std::string_view(name) == "FUZZ_URL") {
    return "postgresql://vigil:" + std::string(kSecret) + "@127.0.0.1:5432/postgres";
  }
  return std::nullopt;
}

void CheckBounds(const pgvigil::Settings& s) {
  if (s.pool.size < 1 || s.pool.size > 4) std::abort();
  if (s.probe.timeout >= s.probe.interval) std::abort();
  if (s.probe.failure_threshold < 1 || s.probe.failure_threshold > 100) std::abort();
  if (s.probe.success_threshold < 1 || s.probe.success_threshold > 100) std::abort();
  if (s.pool.backoff_initial > s.pool.backoff_max) std::abort();
  if (s.database.application_name.empty() || s.database.application_name.size() > 63) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t shape = data[0] % 3;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string text;
  pgvigil::EnvLookup env = &NoEnv;
  switch (shape) {
    case 0:
      text.assign(rest);
      break;
    case 1:
      text.assign(rest);
      env = &UrlEnv;
      break;
    case 2:
      text = "[database]\nurl = \"postgresql://u:" + std::string(kSecret) + "@h/db\"\n" +
             std::string(rest);
      break;
  }
  const bool check_secret = rest.find(kSecret.substr(0, 4)) == std::string_view::npos;
  pgvigil::CliOptions cli;
  try {
    pgvigil::Settings s = pgvigil::LoadSettingsFromString(text, "fuzz.toml", cli, env);
    CheckBounds(s);
  } catch (const pgvigil::ConfigError& e) {
    std::string_view message = e.what();
    if (message.empty()) std::abort();
    if (check_secret && message.find(kSecret) != std::string_view::npos) std::abort();
  }
  return 0;
}
