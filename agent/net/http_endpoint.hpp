#pragma once
// HttpEndpoint: an http:// or https:// URL parsed once (config time) for every outbound call
// (the Neon API, the OTLP collector). Secrets in the URL (userinfo, query) are kept for sending
// and left out of Redacted(), which is what logs, errors and /health show. Pure, thread-safe.
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pgvigil {

struct HttpEndpoint {
  std::string scheme;  // "http" | "https" (lower case)
  std::string host;    // without brackets for IPv6
  int port = 0;        // the URL's, else 80 / 443
  std::string path;    // as written ("" when the URL has none), without query or fragment
  std::string query;   // without '?'; sent, never shown
  std::string username, password;  // percent-decoded userinfo, if any (basic auth)

  // "scheme://host:port" (IPv6 in brackets), as httplib::Client wants it.
  std::string Origin() const;
  // Origin() + path: no userinfo, no query. Safe for logs and /health.
  std::string Redacted() const;
  bool operator==(const HttpEndpoint&) const = default;
};

// The URL with userinfo, query and fragment removed, for messages about a URL that did not parse.
std::string UrlWithoutSecrets(std::string_view url);

// Parses an absolute http(s) URL. The error is a sentence about the URL (without its secrets),
// e.g. "\"http://\" has no host"; callers prefix the config key and add an example.
Result<HttpEndpoint> ParseHttpEndpoint(std::string_view url);

}  // namespace pgvigil
