#include "net/http_endpoint.hpp"

#include <cctype>
#include <charconv>

namespace pgvigil {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

std::string HttpEndpoint::Origin() const {
  return scheme + "://" + HostForUrl(host) + ":" + std::to_string(port);
}

std::string HttpEndpoint::Redacted() const { return Origin() + path; }

std::string UrlWithoutSecrets(std::string_view url) {
  std::string out(url);
  size_t q = out.find_first_of("?#");
  if (q != std::string::npos) out.resize(q);
  size_t scheme_end = out.find("://");
  size_t auth_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t auth_end = out.find('/', auth_start);
  size_t at = out.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
  if (at != std::string::npos && at >= auth_start &&
      (auth_end == std::string::npos || at < auth_end)) {
    out.erase(auth_start, at + 1 - auth_start);
  }
  return out;
}

Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url) {
  auto fail = [&](const std::string& why) -> Result<HttpEndpoint> {
    return Fail("\"" + UrlWithoutSecrets(url) + "\" " + why);
  };
  HttpEndpoint ep;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return fail("has no scheme");
  ep.scheme = Lower(url.substr(0, scheme_end));
  if (ep.scheme != "http" && ep.scheme != "https") {
    return fail("has scheme \"" + ep.scheme + "\", which is not http or https");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t frag = rest.find('#');
  if (frag != std::string_view::npos) rest = rest.substr(0, frag);
  size_t auth_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view after = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    ep.username = PercentDecode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) ep.password = PercentDecode(userinfo.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  if (authority.find_first_of(" \t\r\n") != std::string_view::npos) {
    return fail("has a space in its host");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("has an unclosed IPv6 bracket");
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return fail("has junk after the IPv6 address");
      port_text = tail.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (ep.host.empty()) return fail("has no host");
  if (port_text.empty()) {
    ep.port = ep.scheme == "https" ? 443 : 80;
  } else {
    int port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 1 || port > 65535) {
      return fail("has an invalid port (1-65535)");
    }
    ep.port = port;
  }
  size_t q = after.find('?');
  ep.path = std::string(after.substr(0, q));
  if (q != std::string_view::npos) ep.query = std::string(after.substr(q + 1));
  return ep;
}

}  // namespace pgvigil
