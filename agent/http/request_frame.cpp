#include "http/request_frame.hpp"

#include <cctype>

namespace pgvigil {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

RequestFrame Refuse(int status, std::string reason) {
  RequestFrame f;
  f.verdict = FrameVerdict::kRefuse;
  f.status = status;
  f.reason = std::move(reason);
  return f;
}

// The path of "METHOD TARGET VERSION" (the target up to '?'), "" when malformed.
std::string_view RequestPath(std::string_view line) {
  const std::size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return {};
  std::string_view target = line.substr(sp + 1);
  target = target.substr(0, target.find(' '));
  return target.substr(0, target.find('?'));
}

}  // namespace

bool IsProbePath(std::string_view path) {
  return path == "/livez" || path == "/readyz" || path == "/startupz" || path == "/health" ||
         path == "/health/db";
}

RequestFrame FrameRequest(std::string_view received) {
  const std::size_t line_end = received.find("\r\n");
  if (line_end == std::string_view::npos ? received.size() > kMaxRequestLine
                                         : line_end > kMaxRequestLine) {
    return Refuse(414, "URI Too Long");
  }
  const std::size_t head_end = received.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (received.size() > kMaxRequestHead) return Refuse(431, "Request Header Fields Too Large");
    return {};
  }
  const std::size_t head_length = head_end + 4;
  if (head_length > kMaxRequestHead) return Refuse(431, "Request Header Fields Too Large");

  bool has_length = false;
  std::size_t body_length = 0;
  bool expects_continue = false;
  std::size_t pos = line_end + 2;
  while (pos < head_end + 2) {
    const std::size_t eol = received.find("\r\n", pos);
    const std::string_view line = received.substr(pos, eol - pos);
    pos = eol + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // cpp-httplib's parser judges the rest
    const std::string_view name = Trim(line.substr(0, colon));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsNoCase(name, "transfer-encoding")) return Refuse(411, "Length Required");
    if (EqualsNoCase(name, "expect")) expects_continue = EqualsNoCase(value, "100-continue");
    if (!EqualsNoCase(name, "content-length")) continue;
    if (value.empty() || value.size() > 18) return Refuse(400, "Bad Request");
    std::size_t n = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return Refuse(400, "Bad Request");
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (has_length && n != body_length) return Refuse(400, "Bad Request");  // smuggling
    has_length = true;
    body_length = n;
  }
  if (body_length > kMaxRequestBody) return Refuse(413, "Payload Too Large");
  if (received.size() < head_length + body_length) {
    RequestFrame f;
    f.expects_continue = expects_continue;
    return f;
  }
  RequestFrame f;
  f.verdict = FrameVerdict::kComplete;
  f.length = head_length + body_length;
  f.probe = IsProbePath(RequestPath(received.substr(0, line_end)));
  return f;
}

}  // namespace pgvigil
