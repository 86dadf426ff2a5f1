#!/usr/bin/env bash
# Installs what the tests need, builds pgvigil twice (normal, and ASan+UBSan) and runs the whole
# test suite on each with CTest. Exits non-zero when any test fails.
# Then a ThreadSanitizer build runs the concurrency and HTTP suites, and every libFuzzer target
# runs for a short fixed time on its seed corpus (fuzz/run.sh).
#   PGVIGIL_SKIP_SANITIZERS=1   only the normal build (no ASan, TSan or fuzzing)
#   PGVIGIL_FUZZ_SECONDS=N      seconds per fuzz target (default 15)
#   PGVIGIL_CONTAINERFILE=0     skip building the real Containerfile and running its image (CTest
#                               test `containerfile`, on by default here: it runs beside the
#                               integration suite; ~3-6 min, see docs/testing.md)
#   PGVIGIL_TEST_JOBS=N         CTest entries at once (default 2 x cores: live tests mostly wait)
#   PGVIGIL_SOAK=1              also run the soak test (PGVIGIL_SOAK_MINUTES, default 30; see
#                               docs/testing.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test

jobs=$(nproc)
# Live tests mostly wait on servers and timers: CTest runs one entry per test file, twice as many
# at once as there are cores (PGVIGIL_TEST_JOBS overrides).
test_jobs=${PGVIGIL_TEST_JOBS:-$((jobs * 2))}
status=0
# The issue-16 check of the image users build: on here, while a bare `ctest` skips it.
export PGVIGIL_CONTAINERFILE="${PGVIGIL_CONTAINERFILE:-1}"
stage() { echo "== $* ($(date -u +%T), ${SECONDS}s)"; }
build_suite() {
  local dir=$1
  shift
  stage "build $dir"
  "$root/scripts/build.sh" "$dir" "$@"
}
test_suite() {
  local dir=$1
  stage "test $dir"
  # clang-tidy (label tidy) is a step of its own below.
  (cd "$dir" && ctest --output-on-failure -j"$test_jobs" --timeout 900 -LE tidy) || status=1
}

# PGVIGIL_TESTS=ON explicitly: the demo configures the same build directory without tests.
build_suite "$root/build" -DPGVIGIL_TESTS=ON
# clang-tidy (label tidy) needs only compile_commands.json: it runs at the lowest priority beside
# the normal suite, whose live tests mostly wait on servers and timers (the sanitizer suites are
# the timing-sensitive ones and run alone below).
stage "clang-tidy, beside the normal suite"
nice -n 19 "$root/scripts/check-tidy.sh" "$root/build" >"$root/build/clang-tidy.log" 2>&1 &
tidy_pid=$!
test_suite "$root/build"
if wait "$tidy_pid"; then
  tail -n 1 "$root/build/clang-tidy.log"
else
  cat "$root/build/clang-tidy.log"
  status=1
fi
if [ "${PGVIGIL_SKIP_SANITIZERS:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  build_suite "$root/build-asan" -DPGVIGIL_TESTS=ON -DPGVIGIL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

  # The sanitizer suites run at one test file per core and nothing beside them: the HTTP abuse
  # and Neon timing tests keep their slack only on an otherwise quiet machine (run beside the
  # TSan/fuzz builds and clang-tidy at -j4, they failed their bounds in CI).
  stage "test $root/build-asan"
  (cd "$root/build-asan" && ctest --output-on-failure -j"$jobs" --timeout 900 -LE tidy) || status=1

  stage "build $root/build-tsan (concurrency and HTTP suites)"
  # -O1: what ThreadSanitizer's documentation suggests, and a third less compile time than -O2.
  cmake -S "$root" -B "$root/build-tsan" -DPGVIGIL_TESTS=ON -DPGVIGIL_TSAN=ON -DCMAKE_UNITY_BUILD=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" >/dev/null
  cmake --build "$root/build-tsan" -j"$jobs" --target test_concurrency test_http
  stage "build fuzz targets"
  FUZZ_BUILD_ONLY=1 FUZZ_BUILD_JOBS=$jobs "$root/fuzz/run.sh" || status=1

  stage "test $root/build-tsan"
  (cd "$root/build-tsan" && TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$root/tests/tsan.supp" \
    ctest --output-on-failure -R '^(concurrency|http)/' --timeout 900) || status=1

  stage "fuzz"
  FUZZ_JOBS=$jobs "$root/fuzz/run.sh" "${PGVIGIL_FUZZ_SECONDS:-15}" || status=1
fi
if [ "${PGVIGIL_SOAK:-0}" = 1 ]; then
  echo "== soak (${PGVIGIL_SOAK_MINUTES:-30} minutes)"
  (cd "$root/build" && ./test_integration "[soak]") || status=1
fi
stage "done"
if [ $status -ne 0 ]; then
  echo "pgvigil: some tests failed" >&2
fi
exit $status
