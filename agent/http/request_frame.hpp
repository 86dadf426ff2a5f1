#pragma once
// FrameRequest: from the bytes a client has sent so far, whether one HTTP/1.1 request is whole
// (head, and a body of the declared Content-Length), still incomplete, or to be refused before
// any parsing (request line or head too long, body too large, chunked or contradictory
// framing). The connection front reads until a request is whole, so no worker ever waits on a
// client. Pure; thread-safe.
#include <cstddef>
#include <string>
#include <string_view>

namespace pgvigil {

inline constexpr std::size_t kMaxRequestLine = 8192;  // cpp-httplib's URI limit: longer is 414
inline constexpr std::size_t kMaxRequestHead = 16 * 1024;
inline constexpr std::size_t kMaxRequestBody = 64 * 1024;  // no endpoint takes real uploads
inline constexpr std::size_t kMaxRequestBytes = kMaxRequestHead + kMaxRequestBody;

enum class FrameVerdict { kIncomplete, kComplete, kRefuse };

struct RequestFrame {
  FrameVerdict verdict = FrameVerdict::kIncomplete;
  std::size_t length = 0;         // kComplete: bytes of this request, head and body
  bool probe = false;             // kComplete: a Kubernetes probe or /health path
  bool expects_continue = false;  // kIncomplete: head whole, body awaited, Expect: 100-continue
  int status = 0;                 // kRefuse: 400, 411, 413, 414 or 431
  std::string reason;             // kRefuse: the reason phrase
};

// Never kIncomplete once `received` holds kMaxRequestBytes or more.
RequestFrame FrameRequest(std::string_view received);

// "/livez", "/readyz", "/startupz", "/health", "/health/db": answered ahead of other requests.
bool IsProbePath(std::string_view path);

}  // namespace pgvigil
