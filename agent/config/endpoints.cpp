#include "config/endpoints.hpp"

#include <string>

#include "util/quote.hpp"

namespace pgvigil {

Result<HttpEndpoint> ParseHttpUrl(std::string_view url, std::string_view example) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return Fail("expected an http:// or https:// URL, e.g. " + Quote(example));
  }
  auto ep = ParseHttpEndpoint(url);
  if (!ep) return Fail(ep.error() + "; use e.g. " + Quote(example));
  return ep;
}

Result<HttpEndpoint> ParseOtlpEndpoint(std::string_view url) {
  auto ep = ParseHttpUrl(url, kOtlpEndpointExample);
  if (ep && (ep->path.empty() || ep->path == "/")) ep->path = "/v1/traces";
  return ep;
}

Result<HttpEndpoint> ParseNeonApiUrl(std::string_view url) {
  auto ep = ParseHttpUrl(url, kNeonApiUrlExample);
  if (!ep) return ep;
  if (!ep->username.empty() || !ep->password.empty() || !ep->query.empty()) {
    return Fail("must not carry a user or a query; the key comes from neon.api_key_env");
  }
  while (!ep->path.empty() && ep->path.back() == '/') ep->path.pop_back();
  return ep;
}

HttpEndpoint DefaultNeonApiUrl() { return *ParseNeonApiUrl(kNeonApiUrlExample); }

}  // namespace pgvigil
