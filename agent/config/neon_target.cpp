#include "config/neon_target.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace pgvigil {
namespace {

std::string NormalizeHost(std::string_view host) {
  std::string h(host);
  // A multi-host list ("a,b") is judged by its first entry, as libpq tries that first.
  if (auto comma = h.find(','); comma != std::string::npos) h.resize(comma);
  while (!h.empty() && h.back() == '.') h.pop_back();
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return h;
}

bool IsIpAddress(const std::string& h) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string FirstLabel(std::string_view host) {
  std::string h = NormalizeHost(host);
  if (h.empty() || h.front() == '/' || h.front() == '@' || IsIpAddress(h)) return "";
  return h.substr(0, h.find('.'));
}

constexpr std::string_view kPoolerSuffix = "-pooler";

}  // namespace

bool IsNeonHost(std::string_view host, const std::vector<std::string>& extra_suffixes) {
  std::string h = NormalizeHost(host);
  if (h.empty()) return false;
  auto matches = [&h](std::string suffix) {
    suffix = NormalizeHost(suffix);
    if (!suffix.empty() && suffix.front() == '.') suffix.erase(0, 1);
    if (suffix.empty()) return false;
    if (h == suffix) return true;
    return h.size() > suffix.size() && h.ends_with(suffix) &&
           h[h.size() - suffix.size() - 1] == '.';
  };
  return std::any_of(kNeonHostSuffixes.begin(), kNeonHostSuffixes.end(), matches) ||
         std::any_of(extra_suffixes.begin(), extra_suffixes.end(), matches);
}

bool IsPoolerHost(std::string_view host) {
  std::string label = FirstLabel(host);
  return label.size() > kPoolerSuffix.size() && label.ends_with(kPoolerSuffix);
}

std::string DeriveEndpointId(std::string_view host) {
  std::string label = FirstLabel(host);
  if (IsPoolerHost(host)) label.resize(label.size() - kPoolerSuffix.size());
  return label;
}

bool ResolveNeonMode(const NeonSettings& settings, const ConnParams& params) {
  switch (settings.mode) {
    case NeonMode::kOn:
      return true;
    case NeonMode::kOff:
      return false;
    case NeonMode::kAuto:
      break;
  }
  return IsNeonHost(params.Host());
}

std::string EffectiveEndpointId(const NeonSettings& settings, const ConnParams& params) {
  if (!settings.endpoint_id.empty()) return settings.endpoint_id;
  return DeriveEndpointId(params.Host());
}

std::optional<std::string> CheckNeonTls(const NeonSettings& settings, const ConnParams& params,
                                        std::optional<std::string> env_sslmode,
                                        std::string_view key) {
  if (settings.allow_insecure_tls) return std::nullopt;
  std::string mode = params.Get("sslmode");
  std::string source = "the URL";
  if (mode.empty() && env_sslmode && !env_sslmode->empty()) {
    mode = *env_sslmode;
    source = "PGSSLMODE";
  }
  if (mode == "require" || mode == "verify-ca" || mode == "verify-full") return std::nullopt;
  std::string shown = mode.empty() ? "not set (libpq defaults to \"prefer\")" : "\"" + mode + "\"";
  return std::string(key) + ": sslmode is " + shown + " in " + source +
         " but Neon requires TLS; add sslmode=require (or verify-full) to the URL, or set "
         "neon.allow_insecure_tls = true to override";
}

void AddEndpointOption(ConnParams& params, std::string_view endpoint_id) {
  if (endpoint_id.empty()) return;
  std::string options = params.Get("options");
  if (options.find("endpoint=") != std::string::npos) return;
  std::string addition = "endpoint=" + std::string(endpoint_id);
  params.Set("options", options.empty() ? addition : options + " " + addition);
}

ConnParams NeonConnParams(const NeonSettings& settings, ConnParams params) {
  if (settings.endpoint_option && ResolveNeonMode(settings, params)) {
    AddEndpointOption(params, EffectiveEndpointId(settings, params));
  }
  return params;
}

NeonTarget DescribeNeonTarget(const NeonSettings& settings, const ConnParams& params) {
  NeonTarget t;
  t.enabled = ResolveNeonMode(settings, params);
  t.host = params.Host();
  if (!t.enabled) return t;
  t.endpoint_id = EffectiveEndpointId(settings, params);
  t.pooler = IsPoolerHost(t.host);
  if (t.endpoint_id.empty()) {
    t.warnings.push_back(
        "the Neon endpoint id cannot be derived from host \"" + t.host +
        "\"; set neon.endpoint_id so the compute can be watched through the Neon API");
  }
  if (t.pooler && !settings.sampling_conn) {
    t.warnings.push_back(
        "statement sampling needs the direct host (not -pooler); set neon.sampling_url");
  }
  if (params.Get("sslsni") == "0" && params.Get("options").find("endpoint=") == std::string::npos) {
    t.warnings.push_back(
        "sslsni=0 hides the endpoint from Neon's proxy; remove it or add options=endpoint%3D<id>");
  }
  return t;
}

}  // namespace pgvigil
