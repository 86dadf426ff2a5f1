// pgvigil: a PostgreSQL/Neon observability sidecar. See README.md.
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "app.hpp"
#include "config/settings.hpp"
#include "util/log.hpp"
#include "version.hpp"

namespace {

constexpr const char* kUsage =
    "usage: pgvigil [--config PATH] [--listen HOST:PORT] [--log-level LEVEL]\n"
    "       pgvigil --check-config [--config PATH]\n"
    "       pgvigil --version\n"
    "\n"
    "The database URL comes from the config (database.url or database.url_env), else the\n"
    "PGVIGIL_DATABASE_URL, then DATABASE_URL, environment variables.\n";

// glibc gives each thread that allocates its own arena (up to 8 per core), and every arena keeps
// freed memory. pgvigil's threads mostly wait; two arenas are enough for the scheduler and the
// HTTP workers and keep resident memory ~1.3 MiB lower at rest (~3 MiB under scrape load).
// MALLOC_ARENA_MAX in the environment still wins.
// Fixed thresholds, too: a big transient buffer (a statements sample, a /metrics exposition of
// thousands of series) gets its own mapping and goes back to the system when freed, and free
// heap tops are trimmed past 512 KiB. glibc's dynamic thresholds would rise after the first big
// free and keep such buffers on the heap for good (1.3 MiB less at 200 databases / 5,000
// statements). MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ still win.
void CapMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 512 * 1024);
}

// The HTTP front holds one descriptor per client and sizes its connection cap from the soft
// limit, which is often 1,024 while the hard limit is far higher; raise it (as Go programs do).
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 65536 : std::min<rlim_t>(rl.rlim_max, 65536);
  setrlimit(RLIMIT_NOFILE, &rl);
}

pgvigil::LogLevelValue ToLogLevel(pgvigil::LogLevel l) {
  return static_cast<pgvigil::LogLevelValue>(static_cast<int>(l));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pgvigil;
  CapMallocArenas();
  RaiseDescriptorLimit();
  CliOptions cli;
  Settings settings;
  try {
    cli = ParseCommandLine(argc, argv);
    if (cli.help) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cli.version) {
      std::printf("pgvigil %s\n", kVersion);
      return 0;
    }
    // Everything the agent would refuse at start is refused here (so --check-config catches it).
    settings = LoadSettings(cli);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "pgvigil: configuration error: %s\n", e.what());
    return 2;
  }
  if (cli.check_config) {
    std::printf("pgvigil: configuration ok (%s); database %s\n",
                settings.config_path.empty() ? "defaults" : settings.config_path.c_str(),
                settings.database.conn.Redacted().c_str());
    return 0;
  }
  ConfigureLog(ToLogLevel(settings.log.level), settings.log.format == LogFormat::kJson);
  try {
    return RunAgent(settings);
  } catch (const std::exception& e) {
    LogError("fatal error", {{"error", e.what()}});
    return 1;
  }
}
