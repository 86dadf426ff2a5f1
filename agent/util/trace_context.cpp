#include "util/trace_context.hpp"

#include <string>

namespace pgvigil {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // W3C: uppercase hex is invalid
}

template <size_t N>
bool ParseHex(std::string_view s, std::array<std::uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  bool any = false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexValue(s[2 * i]);
    const int lo = HexValue(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    any = any || out[i] != 0;
  }
  return any || N == 1;  // ids must not be all zero; a one-byte field may be
}

// RFC 3986 percent-decoding as sqlcommenter uses it; nullopt on a malformed escape.
std::optional<std::string> UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    auto hex = [](char c) {
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return HexValue(c);
    };
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]);
    const int lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Traceparent> ParseTraceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags
  if (value.size() < 55) return std::nullopt;
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  std::array<std::uint8_t, 1> flags{};
  Traceparent tp;
  if (!ParseHex(value.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (!ParseHex(value.substr(3, 32), tp.trace_id)) return std::nullopt;
  if (!ParseHex(value.substr(36, 16), tp.parent_id)) return std::nullopt;
  if (!ParseHex(value.substr(53, 2), flags)) return std::nullopt;
  if (value.size() > 55) {
    // Version 00 is exactly 55 characters; later versions may only add "-" fields.
    if (version[0] == 0 || value[55] != '-') return std::nullopt;
  }
  tp.flags = flags[0];
  return tp;
}

std::optional<Traceparent> SqlCommenterTraceparent(std::string_view comment_body) {
  std::string_view rest = Trim(comment_body);
  if (rest.empty()) return std::nullopt;
  std::optional<Traceparent> found;
  bool seen = false;
  while (true) {
    // key='value' where the value may hold \' escapes and never a bare quote.
    const size_t eq = rest.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = Trim(rest.substr(0, eq));
    if (key.empty() || key.find_first_of("' ,") != std::string_view::npos) return std::nullopt;
    rest = Trim(rest.substr(eq + 1));
    if (rest.empty() || rest.front() != '\'') return std::nullopt;
    std::string raw;
    size_t i = 1;
    bool closed = false;
    for (; i < rest.size(); ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size() && rest[i + 1] == '\'') {
        raw.push_back('\'');
        ++i;
      } else if (rest[i] == '\'') {
        closed = true;
        break;
      } else {
        raw.push_back(rest[i]);
      }
    }
    if (!closed) return std::nullopt;
    auto decoded_key = UrlDecode(key);
    auto decoded_value = UrlDecode(raw);
    if (!decoded_key || !decoded_value) return std::nullopt;
    if (*decoded_key == "traceparent") {
      if (seen) return std::nullopt;  // two different claims: trust neither
      seen = true;
      found = ParseTraceparent(*decoded_value);
      if (!found) return std::nullopt;
    }
    rest = Trim(rest.substr(i + 1));
    if (rest.empty()) break;
    if (rest.front() != ',') return std::nullopt;
    rest = Trim(rest.substr(1));
    if (rest.empty()) return std::nullopt;  // trailing comma
  }
  return found;
}

}  // namespace pgvigil
