#include "pgstats/database_size_plan.hpp"

#include <algorithm>

namespace pgvigil {

std::vector<std::string> DatabasesToSize(const std::vector<DatabaseActivity>& activity,
                                         const std::map<std::string, SizedDatabase>& known,
                                         bool full_pass) {
  std::vector<std::string> out;
  for (const auto& a : activity) {
    if (!a.sizable) continue;
    auto it = known.find(a.oid);
    const bool unchanged = it != known.end() && it->second.datname == a.datname &&
                           it->second.writes == a.writes && it->second.stats_reset == a.stats_reset;
    if (full_pass || !unchanged) out.push_back(a.oid);
  }
  return out;
}

std::vector<std::vector<std::string>> SizeBatches(const std::vector<std::string>& oids,
                                                  std::size_t batch) {
  batch = std::max<std::size_t>(batch, 1);
  std::vector<std::vector<std::string>> out;
  for (std::size_t i = 0; i < oids.size(); i += batch) {
    out.emplace_back(oids.begin() + static_cast<std::ptrdiff_t>(i),
                     oids.begin() + static_cast<std::ptrdiff_t>(std::min(oids.size(), i + batch)));
  }
  return out;
}

}  // namespace pgvigil
