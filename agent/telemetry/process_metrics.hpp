#pragma once
// The standard process_* metrics (names and help as in Prometheus' client_golang), read from
// /proc/self at scrape time. Linux only; a file that cannot be read leaves its metrics out
// rather than failing the scrape. Thread-safe (no shared state).
#include <prometheus/metric_family.h>

#include <optional>
#include <string_view>
#include <vector>

namespace pgvigil {

struct ProcStat {
  double cpu_seconds = 0;       // utime + stime
  double start_time_ticks = 0;  // since boot, in clock ticks
};

// Parses the text of /proc/<pid>/stat (the command name may contain spaces and parentheses).
std::optional<ProcStat> ParseProcStat(std::string_view text, long clock_ticks_per_second);
// Soft "Max open files" limit from the text of /proc/<pid>/limits; -1 when "unlimited".
std::optional<double> ParseMaxOpenFiles(std::string_view limits_text);

std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace pgvigil
