// Measures the statement history ring (agent/sampling/statement_history.*) at 5,000 distinct
// statements: heap bytes (glibc mallinfo2, before/after) of an hour of 1-minute windows in which
// every statement ran, with texts of a given length, and the time /queries takes to aggregate it.
// Prints a Markdown table. Run through bench/history_ring.sh.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "sampling/statement_history.hpp"

using namespace pgvigil;
using namespace std::chrono_literals;

namespace {

// Allocated bytes, mmap()ed large blocks (each window's row vector) included.
std::size_t HeapInUse() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

struct Figures {
  std::size_t entries = 0;
  std::size_t heap = 0;
  std::size_t approx = 0;
  double aggregate_ms = 0;
};

Figures Measure(int statements, int windows, std::size_t text_bytes) {
  const std::size_t before = HeapInUse();
  Figures f;
  {
    StatementHistory history(std::chrono::duration_cast<Millis>(windows * 1min));
    std::vector<std::shared_ptr<const StatementIdentity>> who;
    who.reserve(static_cast<std::size_t>(statements));
    for (int i = 0; i < statements; ++i) {
      auto w = std::make_shared<StatementIdentity>();
      w->key = StatementKey{16384, 5, 1'000'000'007LL * (i + 1), true};
      w->datname = "appdb";
      w->usename = "app_user";
      std::string text = "SELECT c" + std::to_string(i) + " FROM t WHERE a = ? AND b IN (?)";
      while (text.size() < text_bytes) text += " AND x = ?";
      text.resize(text_bytes);
      w->text = QueryText{text, QueryFingerprint(text), false};
      who.push_back(std::move(w));
    }
    const auto t0 = std::chrono::system_clock::now();
    for (int m = 0; m < windows; ++m) {
      HistoryWindow w;
      w.start = t0 + m * 1min;
      w.end = t0 + (m + 1) * 1min;
      w.statements.reserve(static_cast<std::size_t>(statements));
      for (int i = 0; i < statements; ++i) {
        StatementCounters c;
        c.calls = 10 + i % 7;
        c.total_exec_ms = 1.5 * c.calls;
        c.rows = c.calls;
        c.shared_blks_hit = 100;
        c.shared_blks_read = 3;
        w.statements.push_back({who[static_cast<std::size_t>(i)], c});
      }
      history.Add(std::move(w));
    }
    who.clear();  // the ring alone holds the identities now
    f.entries = history.entries();
    f.heap = HeapInUse() - before;
    f.approx = history.ApproxBytes();
    const auto snapshot = history.Snapshot();
    QueriesRequest q;
    q.window = 15min;
    const auto a0 = std::chrono::steady_clock::now();
    auto j = AggregateHistory(*snapshot, q, t0 + windows * 1min, QueryTextMode::kObfuscated);
    f.aggregate_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a0).count();
    if (j["totals"]["statements"] != statements) std::abort();
  }
  return f;
}

}  // namespace

int main() {
  std::printf(
      "| statements | windows (1 min) | text bytes | rows | heap MiB | bytes/row | "
      "estimate MiB | /queries 15m aggregate ms |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (std::size_t text : {std::size_t{200}, std::size_t{2048}}) {
    for (int windows : {15, 60}) {
      Figures f = Measure(5000, windows, text);
      std::printf("| 5000 | %d | %zu | %zu | %.1f | %.0f | %.1f | %.1f |\n", windows, text,
                  f.entries, f.heap / 1048576.0, double(f.heap) / double(f.entries),
                  f.approx / 1048576.0, f.aggregate_ms);
    }
  }
  return 0;
}
