#!/usr/bin/env bash
# OTLP exports decoded strictly with the official opentelemetry-proto definitions: runs the span
# exporter's unit tests and the live tracing/sampling tests with PGVIGIL_OTLP_DUMP_DIR set (the
# test OTLP receiver writes every body it gets there), then tests/tracing/otlp_proto_check.js
# decodes each export with the protobufjs module that @opentelemetry/otlp-transformer compiles
# from opentelemetry-proto (npm, pinned, cached under $PGVIGIL_TOOLS_DIR or build/tools) and
# checks the semantic-convention rules; a self-test proves the checker refuses bad exports.
# Needs the built test_tracing and test_integration ($PGVIGIL_BUILD_DIR, default build/).
# Final line: "N passed, M failed"; non-zero exit on failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
build="${PGVIGIL_BUILD_DIR:-${repo}/build}"
tools="${PGVIGIL_TOOLS_DIR:-${repo}/build/tools}/otlp-proto"
pkg="@opentelemetry/otlp-transformer"
version="0.210.0"  # opentelemetry-proto with Span.flags and Link.flags

for tool in node npm; do
  command -v "${tool}" >/dev/null || { echo "test_otlp_proto: '${tool}' not found (scripts/install-deps.sh test)" >&2; exit 1; }
done
for bin in test_tracing test_integration; do
  [[ -x "${build}/${bin}" ]] || { echo "test_otlp_proto: ${build}/${bin} not built" >&2; exit 1; }
done

root_js="${tools}/node_modules/${pkg}/build/src/generated/root.js"
if [[ ! -f "${root_js}" || "$(cat "${tools}/.version" 2>/dev/null)" != "${version}" ]]; then
  echo "test_otlp_proto: installing ${pkg}@${version} into ${tools}" >&2
  mkdir -p "${tools}"
  npm install --prefix "${tools}" --no-audit --no-fund --no-save --loglevel=error \
    "${pkg}@${version}" >&2
  [[ -f "${root_js}" ]] || { echo "test_otlp_proto: ${root_js} missing: the package layout changed" >&2; exit 1; }
  echo "${version}" >"${tools}/.version"
fi

dumps="$(mktemp -d)"
trap 'rm -rf "${dumps}"' EXIT
status=0
echo "== exports from the exporter's unit tests and the live tracing/sampling tests"
PGVIGIL_OTLP_DUMP_DIR="${dumps}" "${build}/test_tracing" >"${dumps}/unit.log" 2>&1 ||
  { cat "${dumps}/unit.log"; status=1; }
PGVIGIL_OTLP_DUMP_DIR="${dumps}" "${build}/test_integration" \
  "traces: probe spans*,sampling: /queries*" >"${dumps}/live.log" 2>&1 ||
  { cat "${dumps}/live.log"; status=1; }
shopt -s nullglob
exports=("${dumps}"/export-*.json)
if [[ ${#exports[@]} -eq 0 ]]; then
  echo "0 passed, 1 failed"
  echo "test_otlp_proto: no export was received" >&2
  exit 1
fi
echo "== strict decode of ${#exports[@]} exports"
out="$(node "${here}/otlp_proto_check.js" "${root_js}" "${exports[@]}")" || status=1
grep -v '^ok ' <<<"${out}" | grep -v 'passed, ' || true
read -r p1 _ f1 _ < <(tail -1 <<<"${out}")
echo "== self-test: mutated exports must be refused"
self="$(node "${here}/otlp_proto_check.js" "${root_js}" --self-test "${exports[0]}")" || status=1
echo "${self}" | grep -v 'passed, ' || true
read -r p2 _ f2 _ < <(tail -1 <<<"${self}")
echo "$((p1 + p2)) passed, $((f1 + f2)) failed"
exit "${status}"
