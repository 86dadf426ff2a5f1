// The window logic of DbStatsCollector, pure (declared in db_stats_collector.hpp): which
// collectors are due and in what order, whether one fits what is left of a window, and a
// collector's interval.
#include <algorithm>

#include "pgstats/db_stats_collector.hpp"

namespace pgvigil {

std::vector<std::size_t> DueOrder(const std::vector<SteadyTime>& next_due, SteadyTime now) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < next_due.size(); ++i) {
    if (next_due[i] <= now) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return next_due[a] < next_due[b]; });
  return order;
}

bool FitsWindow(SteadyTime now, std::chrono::steady_clock::duration expected, SteadyTime window_end,
                bool first_in_window) {
  if (now >= window_end) return false;
  return first_in_window || now + expected <= window_end;
}

std::chrono::milliseconds CollectorInterval(const std::string& name, std::chrono::milliseconds min,
                                            const DbStatsOptions& options) {
  auto it = options.intervals.find(name);
  if (it != options.intervals.end()) return it->second;
  return std::max(options.interval, min);
}

}  // namespace pgvigil
