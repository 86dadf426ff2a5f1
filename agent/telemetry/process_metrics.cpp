#include "telemetry/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace pgvigil {

namespace {

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

prometheus::MetricFamily OneValue(const char* name, const char* help, prometheus::MetricType type,
                                  double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

std::optional<double> BootTimeSeconds() {
  auto text = ReadFile("/proc/stat");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) {
      try {
        return std::stod(line.substr(6));
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

std::optional<int> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // not counting the descriptor of the listing itself
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text, long clock_ticks_per_second) {
  // "pid (comm) state ppid ..." where comm may hold anything: fields restart after the last ')'.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || clock_ticks_per_second <= 0) return std::nullopt;
  std::istringstream in(std::string(text.substr(close + 1)));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  std::string f;
  while (in >> f && fields.size() < 22) fields.push_back(f);
  if (fields.size() < 20) return std::nullopt;
  auto num = [](const std::string& s) -> std::optional<double> {
    unsigned long long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return static_cast<double>(v);
  };
  auto utime = num(fields[14 - 3]);
  auto stime = num(fields[15 - 3]);
  auto start = num(fields[22 - 3]);
  if (!utime || !stime || !start) return std::nullopt;
  const double hz = static_cast<double>(clock_ticks_per_second);
  return ProcStat{(*utime + *stime) / hz, *start};
}

std::optional<double> ParseMaxOpenFiles(std::string_view limits_text) {
  std::istringstream in{std::string(limits_text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream rest(line.substr(14));
    std::string soft;
    if (!(rest >> soft)) return std::nullopt;
    if (soft == "unlimited") return -1.0;
    try {
      return std::stod(soft);
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const long hz = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);

  if (auto text = ReadFile("/proc/self/stat")) {
    if (auto st = ParseProcStat(*text, hz)) {
      out.push_back(OneValue("process_cpu_seconds_total",
                             "Total user and system CPU time spent in seconds.",
                             MetricType::Counter, st->cpu_seconds));
      if (auto boot = BootTimeSeconds()) {
        out.push_back(OneValue("process_start_time_seconds",
                               "Start time of the process since unix epoch in seconds.",
                               MetricType::Gauge, *boot + st->start_time_ticks / hz));
      }
    }
  }
  if (auto text = ReadFile("/proc/self/statm")) {
    std::istringstream in(*text);
    double size_pages = 0, resident_pages = 0;
    if (in >> size_pages >> resident_pages) {
      out.push_back(OneValue("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                             MetricType::Gauge, size_pages * page));
      out.push_back(OneValue("process_resident_memory_bytes", "Resident memory size in bytes.",
                             MetricType::Gauge, resident_pages * page));
    }
  }
  if (auto fds = CountOpenFds()) {
    out.push_back(
        OneValue("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, *fds));
  }
  std::optional<double> max_fds;
  if (auto text = ReadFile("/proc/self/limits")) max_fds = ParseMaxOpenFiles(*text);
  if (!max_fds || *max_fds < 0) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      max_fds = static_cast<double>(rl.rlim_cur);
    } else {
      max_fds.reset();  // unlimited: leave the metric out rather than invent a number
    }
  }
  if (max_fds) {
    out.push_back(OneValue("process_max_fds", "Maximum number of open file descriptors.",
                           MetricType::Gauge, *max_fds));
  }
  return out;
}

}  // namespace pgvigil
