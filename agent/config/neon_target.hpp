#pragma once
// Neon target detection: is the configured host a Neon endpoint, what is its endpoint id, is it
// the -pooler (PgBouncer, transaction mode) host, and is the TLS setting strong enough.
// Pure functions of the settings; thread-safe. Nothing here returns or logs a secret.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/database_url.hpp"
#include "config/settings.hpp"

namespace pgvigil {

// Host suffixes that mean "this is Neon" in mode = auto.
inline const std::vector<std::string> kNeonHostSuffixes = {"neon.tech"};

// True when `host` (case-insensitive, trailing dot ignored) is `suffix` or ends in ".suffix" for
// one of kNeonHostSuffixes or `extra_suffixes`.
bool IsNeonHost(std::string_view host, const std::vector<std::string>& extra_suffixes = {});

// "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech" -> "ep-cool-darkness-123456".
// "" for an empty host, an IP address or a unix socket path.
std::string DeriveEndpointId(std::string_view host);

// The first label ends in "-pooler" (Neon's PgBouncer endpoint).
bool IsPoolerHost(std::string_view host);

// mode on/off wins; auto = IsNeonHost(first host of `params`).
bool ResolveNeonMode(const NeonSettings& settings, const ConnParams& params);

// settings.endpoint_id when set, else derived from the first host ("" when neither works).
std::string EffectiveEndpointId(const NeonSettings& settings, const ConnParams& params);

// On Neon the sslmode must be require, verify-ca or verify-full; libpq's default "prefer" (and
// disable/allow) would silently accept a plaintext or downgraded connection. Returns an error
// sentence naming the problem and the fix, or nullopt when fine (or allow_insecure_tls is set).
// `env_sslmode` is PGSSLMODE as libpq would see it (libpq uses it when the URL has no sslmode);
// `key` names the setting the URL came from in the message.
std::optional<std::string> CheckNeonTls(const NeonSettings& settings, const ConnParams& params,
                                        std::optional<std::string> env_sslmode,
                                        std::string_view key = "database.url");

// The SNI-less fallback: adds "endpoint=<id>" to libpq's `options` (appended with a space to any
// options already present; unchanged when an endpoint= option is already there or id is "").
void AddEndpointOption(ConnParams& params, std::string_view endpoint_id);

// The parameters pgvigil connects with for `params` (the main URL or neon.sampling_url): with
// neon.endpoint_option on and Neon mode resolved on for that host, AddEndpointOption with
// EffectiveEndpointId; otherwise `params` unchanged (a plain PostgreSQL would reject the option).
ConnParams NeonConnParams(const NeonSettings& settings, ConnParams params);

// Everything the rest of the agent needs to know about the target, resolved once at start-up.
struct NeonTarget {
  bool enabled = false;               // Neon mode resolved on
  std::string host;                   // first host
  std::string endpoint_id;            // configured or derived; "" when unknown
  bool pooler = false;                // -pooler host: pooler-safe SQL only, no statement sampling
  std::vector<std::string> warnings;  // sentences for /health and the start-up log
};
NeonTarget DescribeNeonTarget(const NeonSettings& settings, const ConnParams& params);

}  // namespace pgvigil
