#include "config/listen_address.hpp"

#include <charconv>

namespace pgvigil {

std::string ListenAddress::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  auto fail = [&](std::string_view why) -> Result<ListenAddress> {
    return Fail("\"" + std::string(text) + "\" is not HOST:PORT (" + std::string(why) +
                "); use e.g. \"0.0.0.0:9188\", \"127.0.0.1:9188\", \"[::]:9188\" or \":9188\" "
                "(port 0..65535)");
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("no closing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("no :PORT after the IPv6 address");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.empty()) return fail("an empty IPv6 address");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("no :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return fail("an IPv6 address needs brackets");
  }
  int value = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 0 ||
      value > 65535) {
    return fail("the port must be 0..65535");
  }
  ListenAddress out;
  out.host = host.empty() ? "0.0.0.0" : std::string(host);
  out.port = value;
  return out;
}

}  // namespace pgvigil
