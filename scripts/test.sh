#!/usr/bin/env bash
# Installs what the tests need, builds pgvigil twice (normal, and ASan+UBSan) and runs the whole
# test suite on each with CTest. Exits non-zero when any test fails.
#   PGVIGIL_SKIP_SANITIZERS=1   only the normal build
#   PGVIGIL_SOAK=1              also run the long reliability tests (see docs/testing.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test

jobs=$(nproc)
status=0
run_suite() {
  local dir=$1
  shift
  echo "== build $dir"
  "$root/scripts/build.sh" "$dir" "$@"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900) || status=1
}

# PGVIGIL_TESTS=ON explicitly: the demo configures the same build directory without tests.
run_suite "$root/build" -DPGVIGIL_TESTS=ON
if [ "${PGVIGIL_SKIP_SANITIZERS:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite "$root/build-asan" -DPGVIGIL_TESTS=ON -DPGVIGIL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
if [ $status -ne 0 ]; then
  echo "pgvigil: some tests failed" >&2
fi
exit $status
