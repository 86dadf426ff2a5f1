#include "util/utf8.hpp"

#include <cstddef>

namespace pgvigil {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, surrogates or
// code points past U+10FFFF), 0 when there is none. s[i] >= 0x80.
std::size_t SequenceLength(std::string_view s, std::size_t i) {
  auto cont = [&](std::size_t k, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    if (k >= s.size()) return false;
    const unsigned char c = s[k];
    return c >= lo && c <= hi;
  };
  const unsigned char c = s[i];
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c == 0xE0) return cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(i + 1) && cont(i + 2) ? 3 : 0;
  if (c == 0xED) return cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
  if (c == 0xF0) return cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  if (c == 0xF4) return cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  return 0;
}

bool KeptControl(unsigned char c) { return c == '\t' || c == '\n' || c == '\r'; }
bool Control(unsigned char c) { return (c < 0x20 && !KeptControl(c)) || c == 0x7f; }

}  // namespace

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out.push_back(Control(c) ? ' ' : static_cast<char>(c));
      ++i;
      continue;
    }
    const std::size_t len = SequenceLength(s, i);
    if (len == 0) {
      out.append(kReplacement);
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

bool IsCleanUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      if (Control(c)) return false;
      ++i;
      continue;
    }
    const std::size_t len = SequenceLength(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace pgvigil
