#pragma once
// The outbound HTTP endpoints of the config (tracing.otlp_endpoint, neon.api_url), parsed once
// here into net/HttpEndpoint: the exporter and the Neon API client take the typed value and
// parse nothing again, so --check-config refuses everything they would. Errors are sentences
// about the URL (never its secrets) ending with an example; callers prefix the config key.
#include <string_view>

#include "net/http_endpoint.hpp"
#include "util/result.hpp"

namespace pgvigil {

inline constexpr std::string_view kOtlpEndpointExample = "http://localhost:4318/v1/traces";
inline constexpr std::string_view kNeonApiUrlExample = "https://console.neon.tech/api/v2";

// An absolute http:// or https:// URL (net/ParseHttpEndpoint); `example` goes in the error.
Result<HttpEndpoint> ParseHttpUrl(std::string_view url, std::string_view example);
// tracing.otlp_endpoint, with OTLP's default path "/v1/traces" when it has none.
Result<HttpEndpoint> ParseOtlpEndpoint(std::string_view url);
// neon.api_url: no user or query (the key goes in a header), no trailing slash on the path.
Result<HttpEndpoint> ParseNeonApiUrl(std::string_view url);
// kNeonApiUrlExample, parsed: the default neon.api_url.
HttpEndpoint DefaultNeonApiUrl();

}  // namespace pgvigil
