#!/usr/bin/env bash
# Builds the libFuzzer targets with CMake (clang++-14, -fsanitize=fuzzer,address,undefined;
# one pgvigil_fuzz() line per fuzz/<name>_fuzz.cpp) and runs each for a fixed time on its seed
# corpus fuzz/corpus/<name>/.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default $FUZZ_SECONDS, else 20)
#   TARGET   <name> of any fuzz/<name>_fuzz.cpp (default: all of them)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CXX_FUZZ (default clang++-14), FUZZ_JOBS
# (parallel targets, default 1), FUZZ_BUILD_JOBS (compile jobs, default nproc), FUZZ_BUILD_ONLY=1
# (build, do not run: CI builds while another suite waits). Seeds in fuzz/corpus/<target>/ are
# only read; new corpus entries go to a temp dir. Crashes are written to $FUZZ_BUILD_DIR/artifacts/<target>/ and the script exits
# non-zero; reproduce one with  $FUZZ_BUILD_DIR/<target>_fuzz <artifact>.
set -euo pipefail
seconds="${1:-${FUZZ_SECONDS:-20}}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++-14}"
targets=("$@")

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 2
fi

# The targets are CMake's (PGVIGIL_FUZZ=ON: every module they link instrumented with
# -fsanitize=fuzzer-no-link,address,undefined; see pgvigil_fuzz() in CMakeLists.txt).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake -S "$root" -B "$out" -DCMAKE_CXX_COMPILER="$cxx" -DPGVIGIL_FUZZ=ON -DPGVIGIL_TESTS=OFF -DCMAKE_UNITY_BUILD=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-g -O1" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log" >&2; exit 1; }
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd "$root/fuzz" && ls *_fuzz.cpp | sed 's/_fuzz\.cpp$//')
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("${t}_fuzz"); done
# A compile error stops the run before fuzzing.
if ! cmake --build "$out" -j"${FUZZ_BUILD_JOBS:-$(nproc)}" --target "${build_targets[@]}" \
  >"$work/build.log" 2>&1; then
  echo "fuzz: build failed:" >&2
  tail -60 "$work/build.log" >&2
  exit 1
fi
failed=0
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

declare -A result
run_one() {
  local t=$1
  mkdir -p "$out/artifacts/$t" "$work/corpus-$t"
  "$out/${t}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/$t/" -print_final_stats=1 \
    "$work/corpus-$t" "$here/corpus/$t" >"$work/$t.log" 2>&1
}
jobs="${FUZZ_JOBS:-1}"
running=0
declare -A run_pid
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s"
  run_one "$t" &
  run_pid[$t]=$!
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
for t in "${targets[@]}"; do
  if wait "${run_pid[$t]}"; then result[$t]=ok; else result[$t]=FAILED; failed=1; fi
done

for t in "${targets[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
  printf 'fuzz: %-13s %-6s %s execs\n' "$t" "${result[$t]}" "$execs"
  if [ "${result[$t]}" != ok ]; then
    grep -E 'ERROR|SUMMARY|==[0-9]+==|runtime error|Test unit written|terminate' "$work/$t.log" | head -20 >&2 || true
    tail -40 "$work/$t.log" >&2
  fi
done
exit "$failed"
