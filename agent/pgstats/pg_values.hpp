#pragma once
// Pure conversions of server values to postgres_exporter's metric shapes. Thread-safe.
#include <optional>
#include <string>
#include <utility>

namespace pgvigil {

// "PostgreSQL 15.4 (Debian ...) on ..." -> "15.4.0" (postgres_exporter's short_version); "" if
// the text holds no version.
std::string ShortPgVersion(const std::string& version);
// A pg_settings unit -> (metric suffix "bytes"/"seconds"/"", factor to base units); nullopt for a
// unit postgres_exporter does not know either.
std::optional<std::pair<std::string, double>> NormalisePgSettingUnit(const std::string& unit);

}  // namespace pgvigil
