#pragma once
// ListenAddress: where the HTTP server binds (http.listen, --listen), parsed once by the config
// and used as is by the server. Pure, thread-safe.
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pgvigil {

struct ListenAddress {
  std::string host = "0.0.0.0";  // a name or an IP literal, without brackets
  int port = 9188;               // 0 = any free port

  std::string ToString() const;  // "host:port", an IPv6 literal in brackets
  bool operator==(const ListenAddress&) const = default;
};

// "HOST:PORT", "[IPV6]:PORT", or ":PORT" for every IPv4 interface (as postgres_exporter's
// --web.listen-address=":9187"); port 0..65535. The error names the text, what is wrong and
// examples, e.g. "\"9188\" is not HOST:PORT (no :PORT); use e.g. ...".
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace pgvigil
