#!/usr/bin/env bash
# Configures and builds pgvigil. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
# A unity build (CMake batches of up to 8 files of one target per compiler run): a third of the
# compile time of a from-scratch build, which is what CI and the demo do. PGVIGIL_UNITY=OFF for a
# file-by-file build (incremental work, clangd and clang-tidy want that one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD="${PGVIGIL_UNITY:-ON}" "$@" \
  >/dev/null
cmake --build "$dir" -j"$(nproc)"
