#!/usr/bin/env bash
# Builds the query obfuscator fuzz target with libFuzzer + ASan/UBSan and runs it.
# Usage: fuzz/run.sh [SECONDS]   (default 60). New corpus entries go to a temp dir; the seed
# corpus in fuzz/corpus/obfuscator/ is only read. Crashes are written to
# $FUZZ_BUILD_DIR/artifacts/ (default build-fuzz/artifacts/).
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
mkdir -p "$out/artifacts"
cxx="${CXX_FUZZ:-clang++-14}"
"$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wextra -Werror -I"$root/agent" \
  "$here/query_obfuscator_fuzz.cpp" "$root/agent/sampling/query_text.cpp" \
  -o "$out/query_obfuscator_fuzz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$out/query_obfuscator_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$work" "$here/corpus/obfuscator"
