#include "config/toml_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "config/database_url.hpp"
#include "config/suggest.hpp"

namespace pgvigil {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDurationExamples = "use e.g. \"250ms\", \"10s\", \"1m\", \"1h30m\"";
// Everything is bounded: no duration may overflow a deadline computed from it.
constexpr Millis kMaxDuration = 30 * 24h;
// A config file is a few KiB; anything far larger is a mistake (e.g. --config /dev/zero).
constexpr size_t kMaxConfigBytes = 1 << 20;

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

}  // namespace

const std::vector<EnumName<LogLevel>> kLogLevels = {
    {"debug", LogLevel::kDebug},
    {"info", LogLevel::kInfo},
    {"warn", LogLevel::kWarn},
    {"error", LogLevel::kError},
};

void Value::Fail(const std::string& problem) const { throw ConfigError(where + ": " + problem); }

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

std::string ReadString(const Value& v, bool secret) {
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

Millis ReadDuration(const Value& v, Millis min) {
  const auto* s = v.node.as_string();
  if (s == nullptr) {
    v.Fail("expected a duration string, got " + TypeName(v.node) + "; " + kDurationExamples);
  }
  std::string error;
  auto d = CheckDuration(s->get(), min, &error);
  if (!d) v.Fail(error);
  return *d;
}

std::string JoinEnumNames(const std::vector<std::string_view>& names) {
  return JoinNames(std::vector<std::string>(names.begin(), names.end()));
}

void FailEnum(const Value& v, const std::vector<std::string_view>& names) {
  const auto* s = v.node.as_string();
  if (s == nullptr) {
    v.Fail("expected a string, got " + TypeName(v.node) + "; allowed " + JoinEnumNames(names));
  }
  v.Fail(Quote(s->get()) + " is not allowed; allowed " + JoinEnumNames(names));
}

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

ListenAddress ReadListen(const Value& v) {
  auto listen = ParseListenAddress(ReadString(v));
  if (!listen) v.Fail(listen.error());
  return *listen;
}

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

toml::table ParseToml(std::string_view text, std::string_view source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::string position = Position(source_name, e.source());
    if (position.empty()) position = "config";
    // toml++ may quote a fragment of the offending line, which could hold a password.
    throw ConfigError(
        ScrubSecrets(position + ": TOML syntax error: " + std::string(e.description()),
                     GuessSecretsInText(text)));
  }
}

}  // namespace pgvigil
