#include "util/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "util/time_format.hpp"

namespace pgvigil {

namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevelValue::kInfo)};
std::atomic<bool> g_json{false};
std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_write_mu;

bool IsReservedKey(std::string_view key) { return key == "ts" || key == "level" || key == "msg"; }

std::string FieldKey(std::string_view key) {
  // Built with append: GCC 12 warns falsely (-Wrestrict) on `"field_" + std::string(key)` at -O2.
  std::string out;
  if (IsReservedKey(key)) out = "field_";
  out.append(key);
  if (out.empty()) out = "_";
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '=' || c == '"') c = '_';
  }
  return out;
}

// Same rule as go-logfmt: spaces, controls, '=' and '"' need quotes; so does "" (else it
// reads as a missing value).
bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '=' || c == '"') return true;
  }
  return false;
}

void AppendLogfmtValue(std::string& out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out.append(buf);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void WriteAll(int fd, const std::string& line) {
  std::lock_guard lock(g_write_mu);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report a failing log write
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

std::string_view LogLevelValueName(LogLevelValue level) {
  switch (level) {
    case LogLevelValue::kDebug:
      return "debug";
    case LogLevelValue::kInfo:
      return "info";
    case LogLevelValue::kWarn:
      return "warn";
    case LogLevelValue::kError:
      return "error";
  }
  return "info";
}

void ConfigureLog(LogLevelValue min_level, bool json) {
  g_min_level.store(static_cast<int>(min_level), std::memory_order_relaxed);
  g_json.store(json, std::memory_order_relaxed);
}

void SetLogFdForTest(int fd) { g_fd.store(fd < 0 ? STDERR_FILENO : fd); }

std::string FormatLogLine(LogLevelValue level, std::string_view msg,
                          std::initializer_list<LogField> fields, bool json) {
  const std::string ts = FormatRfc3339Utc(std::chrono::system_clock::now(), 3);
  if (json) {
    nlohmann::ordered_json j;
    j["ts"] = ts;
    j["level"] = LogLevelValueName(level);
    j["msg"] = msg;
    for (const auto& [key, value] : fields) j[FieldKey(key)] = value;
    // Invalid UTF-8 (e.g. from a server message) is replaced, never thrown.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  std::string out;
  out.reserve(64 + msg.size() + fields.size() * 24);
  out.append("ts=").append(ts).append(" level=").append(LogLevelValueName(level));
  out.append(" msg=");
  AppendLogfmtValue(out, msg);
  for (const auto& [key, value] : fields) {
    out.push_back(' ');
    out.append(FieldKey(key)).push_back('=');
    AppendLogfmtValue(out, value);
  }
  out.push_back('\n');
  return out;
}

void Log(LogLevelValue level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  WriteAll(g_fd.load(std::memory_order_relaxed),
           FormatLogLine(level, msg, fields, g_json.load(std::memory_order_relaxed)));
}

}  // namespace pgvigil
