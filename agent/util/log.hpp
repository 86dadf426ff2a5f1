#pragma once
// Logger: one line per event on stderr, logfmt (`ts=... level=info msg="..." key=value`) or JSON.
// Thread-safe. Callers pass already-scrubbed values; Log itself never sees the password.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pgvigil {

enum class LogLevelValue { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogField = std::pair<std::string_view, std::string>;

// Global configuration, set once at start-up (before threads) and read by all.
void ConfigureLog(LogLevelValue min_level, bool json);
void Log(LogLevelValue level, std::string_view msg, std::initializer_list<LogField> fields = {});
inline void LogInfo(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevelValue::kInfo, msg, f);
}
inline void LogWarn(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevelValue::kWarn, msg, f);
}
inline void LogError(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevelValue::kError, msg, f);
}
inline void LogDebug(std::string_view msg, std::initializer_list<LogField> f = {}) {
  Log(LogLevelValue::kDebug, msg, f);
}

// Formats one line, '\n'-terminated, without writing it (for tests). Field keys "ts", "level"
// and "msg" are renamed "field_ts", ... so they never shadow the line's own.
std::string FormatLogLine(LogLevelValue level, std::string_view msg,
                          std::initializer_list<LogField> fields, bool json);

std::string_view LogLevelValueName(LogLevelValue level);  // "debug", "info", "warn", "error"

// Redirects log lines to `fd` (-1 restores stderr). Tests only; not for use while logging.
void SetLogFdForTest(int fd);

}  // namespace pgvigil
