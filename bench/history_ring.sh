#!/usr/bin/env bash
# Memory of the /queries statement history ring at 5,000 distinct statements (issue 14): builds
# bench/history_ring_memory.cpp (Release) and prints a Markdown table of heap bytes (glibc
# mallinfo2) per hour of 1-minute windows, with 200- and 2048-byte texts. Takes seconds.
#   BENCH_BUILD_DIR   build directory (default build-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}
# -Wno-error=restrict: GCC 12 reports a false -Wrestrict in std::string at -O3.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPGVIGIL_TESTS=OFF \
  -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
cmake --build "$build" -j2 --target bench_history_ring >/dev/null
"$build/bench_history_ring"
