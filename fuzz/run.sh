#!/usr/bin/env bash
# Builds every libFuzzer target (clang++-14, -fsanitize=fuzzer,address,undefined) and runs each
# for a fixed time on its seed corpus.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default $FUZZ_SECONDS, else 20)
#   TARGET   any of: obfuscator database_url config otlp_json request_frame (default: all)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CXX_FUZZ (default clang++-14), FUZZ_JOBS
# (parallel targets, default 1). Seeds in fuzz/corpus/<target>/ are only read; new corpus entries
# go to a temp dir. Crashes are written to $FUZZ_BUILD_DIR/artifacts/<target>/ and the script exits
# non-zero; reproduce one with  $FUZZ_BUILD_DIR/<target>_fuzz <artifact>.
set -euo pipefail
seconds="${1:-${FUZZ_SECONDS:-20}}"
shift || true
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++-14}"
all_targets=(obfuscator database_url config otlp_json request_frame)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz: $cxx not found; install clang-14 and libclang-rt-14-dev" >&2
  exit 2
fi

flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -Wall -Wextra -Werror -I"$root/agent" -I/usr/include/postgresql)

# Sources per target: the module files the target needs, linked directly (no CMake), so the code
# under test is instrumented. toml++ is compiled header-only for the same reason.
build() {
  local target=$1 src libs=()
  case "$target" in
    obfuscator)
      src=("$here/query_obfuscator_fuzz.cpp" "$root/agent/sampling/query_text.cpp"
        "$root/agent/util/utf8.cpp" "$root/agent/util/trace_context.cpp") ;;
    database_url)
      src=("$here/database_url_fuzz.cpp" "$root/agent/config/database_url.cpp"
        "$root/agent/config/suggest.cpp")
      libs=(-lpq) ;;
    config)
      src=("$here/config_fuzz.cpp" "$root"/agent/config/*.cpp)
      # toml++ 3.3 asserts (abort) on some malformed table headers such as "[&" or "[ {"
      # (upstream marzer/tomlplusplus#294, fixed by #301). pgvigil links Debian's NDEBUG build,
      # which reports a clean parse error for them (tests/config/config_fuzz_regression_test.cpp),
      # so the fuzzer does the same: toml++'s internal asserts off, the sanitizers still on.
      # Likewise is_non_ascii_horizontal_whitespace() reaches __builtin_unreachable() for
      # U+FEC6..U+FEFE (e.g. "\xef\xbb\xb0"); Debian's build returns "not whitespace" there,
      # so UBSan's unreachable check is off for this target only.
      libs=(-DTOML_HEADER_ONLY=1 "-DTOML_ASSERT(expr)=static_assert(true)" -fno-sanitize=unreachable
        -lpq)
      # clang 14 cannot capture a structured binding in a lambda (C++20 P1381, clang >= 16);
      # GCC can. Until settings.cpp avoids that, fuzz a copy with the loop variables unpacked.
      if ! "$cxx" -std=c++20 -fsyntax-only -I"$root/agent" "${libs[@]:0:2}" \
        "$root/agent/config/settings.cpp" 2>/dev/null; then
        sed -E 's/for \(const auto& \[([a-z_]+), ([a-z_]+)\] : (.*)\) \{$/for (const auto\& kv_ : \3) { const auto\& \1 = kv_.first; const auto\& \2 = kv_.second;/' \
          "$root/agent/config/settings.cpp" >"$work/settings_clang14.cpp"
        src=("$here/config_fuzz.cpp" "$work/settings_clang14.cpp" "$root/agent/config/database_url.cpp"
          "$root/agent/config/duration.cpp" "$root/agent/config/suggest.cpp")
      fi ;;
    otlp_json)
      src=("$here/otlp_json_fuzz.cpp" "$root/agent/tracing/otlp_json.cpp"
        "$root/agent/tracing/span.cpp") ;;
    request_frame)
      src=("$here/request_frame_fuzz.cpp" "$root/agent/http/request_frame.cpp") ;;
    *)
      echo "fuzz: unknown target '$target' (known: ${all_targets[*]})" >&2
      return 2 ;;
  esac
  "$cxx" "${flags[@]}" "${src[@]}" "${libs[@]}" -o "$out/${target}_fuzz"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# Build all first (in parallel: ~2 cores), so a compile error stops the run before fuzzing.
pids=()
for t in "${targets[@]}"; do
  build "$t" >"$work/$t.build.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "fuzz: build of ${targets[$i]} failed:" >&2
    cat "$work/${targets[$i]}.build.log" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1

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
