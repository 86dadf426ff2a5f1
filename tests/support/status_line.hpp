#pragma once
// StatusOf: the status code of a raw HTTP/1.1 reply ("HTTP/1.1 200 OK\r\n..." -> 200), or -1
// when the reply does not start with a status line.
#include <string>

namespace pgvigil::test {

inline int StatusOf(const std::string& raw) {
  if (raw.rfind("HTTP/1.1 ", 0) != 0) return -1;
  return std::stoi(raw.substr(9, 3));
}

}  // namespace pgvigil::test
