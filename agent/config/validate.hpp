#pragma once
// The config checks that need the whole file: cross-field rules, the database URL (from the file
// or the environment), and the target it names (Neon needs TLS). Run once by the loader, so
// --check-config refuses everything the agent would refuse at start. Internal to config/.
#include "config/schema.hpp"

namespace pgvigil {

void CheckCrossField(const Settings& s, const Pending& p);
void ResolveDatabaseUrl(Settings& s, const Pending& p);
// Neon requires TLS: a weaker sslmode on a Neon host (the main URL or neon.sampling_url) is a
// ConfigError unless neon.allow_insecure_tls; PGSSLMODE is read through `env`.
void CheckTargets(const Settings& s, EnvLookup env);

}  // namespace pgvigil
