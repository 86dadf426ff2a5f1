#include "pgstats/pg_values.hpp"

#include <cctype>
#include <map>
#include <vector>

namespace pgvigil {

std::optional<std::pair<std::string, double>> NormalisePgSettingUnit(const std::string& unit) {
  static const std::map<std::string, std::pair<std::string, double>> kUnits = {
      {"", {"", 1}},
      {"ms", {"seconds", 1e-3}},
      {"s", {"seconds", 1}},
      {"min", {"seconds", 60}},
      {"h", {"seconds", 3600}},
      {"d", {"seconds", 86400}},
      {"B", {"bytes", 1}},
      {"kB", {"bytes", 1024.0}},
      {"MB", {"bytes", 1024.0 * 1024}},
      {"GB", {"bytes", 1024.0 * 1024 * 1024}},
      {"TB", {"bytes", 1024.0 * 1024 * 1024 * 1024}},
      {"8kB", {"bytes", 8192.0}},
      {"16kB", {"bytes", 16384.0}},
      {"32kB", {"bytes", 32768.0}},
      {"16MB", {"bytes", 16.0 * 1024 * 1024}},
      {"32MB", {"bytes", 32.0 * 1024 * 1024}},
      {"64MB", {"bytes", 64.0 * 1024 * 1024}},
  };
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return std::nullopt;
  return it->second;
}

std::string ShortPgVersion(const std::string& version) {
  const auto space = version.find(' ');
  if (space == std::string::npos) return "";
  std::vector<std::string> parts;
  std::string cur;
  for (size_t i = space + 1; i < version.size(); ++i) {
    const char c = version[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      cur += c;
    } else if (c == '.' && !cur.empty() && parts.size() < 2) {
      parts.push_back(cur);
      cur.clear();
    } else {
      break;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  if (parts.empty()) return "";
  while (parts.size() < 3) parts.push_back("0");
  return parts[0] + "." + parts[1] + "." + parts[2];
}

}  // namespace pgvigil
