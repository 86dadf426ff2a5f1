#!/usr/bin/env bash
# clang-tidy over agent/ with the repo's .clang-tidy (CTest `clang_tidy`, labels lint and slow).
# Usage: scripts/check-tidy.sh [BUILD_DIR]   (needs BUILD_DIR/compile_commands.json, which CMake
# writes at configure time). Exits 77 (CTest: skipped) when clang-tidy-14 is not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
tidy=${CLANG_TIDY:-clang-tidy-14}
if ! command -v "$tidy" >/dev/null; then
  echo "clang-tidy: $tidy not found (scripts/install-deps.sh test installs clang-tidy-14)" >&2
  exit 77
fi
[ -f "$build/compile_commands.json" ] || { echo "no $build/compile_commands.json" >&2; exit 2; }
if grep -q '/Unity/unity_' "$build/compile_commands.json"; then
  # A unity build's database lists its batches, not the sources: configure (only) a file-by-file
  # twin beside it and read that one.
  cmake -S "$root" -B "$build/tidy-db" -DCMAKE_UNITY_BUILD=OFF -DPGVIGIL_TESTS=ON >/dev/null
  build=$build/tidy-db
fi
mapfile -t files < <(cd "$root" && find agent -name '*.cpp' | sort)
# One process per file, as many at once as there are cores; the first finding fails the run.
cd "$root"
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 4 "$tidy" -p "$build" --quiet 2>/dev/null
echo "clang-tidy: ${#files[@]} files clean"
