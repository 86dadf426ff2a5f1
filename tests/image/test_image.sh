#!/usr/bin/env bash
# Container image tests, offline: scripts/build-image.sh builds FROM-scratch images with podman
# (installed from Debian if missing) and this script runs them.
#   1. recipe: packs /usr/bin/id as "pgvigil" and runs it: proves the ldd + loader packing, the
#      CA bundle and passwd files, and that the container really runs as uid 65532;
#   2. with the real binary ($PGVIGIL_BINARY, else build/pgvigil; skipped when absent):
#      `pgvigil --version`, `--check-config` with a config and an env URL, a bad config
#      rejected, USER 65532 in the image, and the server against a real PostgreSQL on loopback
#      (tests/image/live.sh: --network=host, --read-only, /livez, /health, /metrics, uid 65532
#      and RSS from the host's /proc, clean SIGTERM). The same runtime recipe as the
#      Containerfile's final stage; tests/image/test_containerfile.sh builds that file itself.
# Final line: "N passed, M failed, K skipped"; non-zero exit on failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
binary="${PGVIGIL_BINARY:-${repo}/build/pgvigil}"
work="${PGVIGIL_IMAGE_TEST_DIR:-${repo}/build/image-test}"
version="$(sed -n 's/^project(pgvigil VERSION \([0-9.]*\).*/\1/p' "${repo}/CMakeLists.txt")"

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
info() { echo "INFO $*"; }

# shellcheck source=live.sh
source "${here}/live.sh"
containers=()
cleanup() {
  if [[ -x "${work}/podman" ]]; then
    for c in "${containers[@]}"; do "${work}/podman" rm -f -t 0 "${c}" >/dev/null 2>&1; done
  fi
  live_cleanup
  rm -rf "${work}"
}
trap cleanup EXIT
rm -rf "${work}"
mkdir -p "${work}"
podman_() { "${work}/podman" "$@"; }

# --- 1. the packing recipe, with a stand-in binary ------------------------------------------
mkdir -p "${work}/dummy"
cp /usr/bin/id "${work}/dummy/pgvigil"
if out="$(PGVIGIL_IMAGE_DIR="${work}" PGVIGIL_IMAGE=localhost/pgvigil-recipe:test \
    "${repo}/scripts/build-image.sh" "${work}/dummy/pgvigil" 2>"${work}/build-recipe.log")"; then
  pass "recipe: image built (${out})"
  if got="$(podman_ run --rm --network=none localhost/pgvigil-recipe:test 2>&1)" &&
     [[ "${got}" == "uid=65532(nonroot) gid=65532(nonroot)"* ]]; then
    pass "recipe: runs as nonroot ($got)"
  else
    fail "recipe: runs as nonroot" "${got}"
  fi
  cfg="$(podman_ image inspect --format '{{.Config.User}} {{json .Config.Entrypoint}}' \
         localhost/pgvigil-recipe:test 2>&1)"
  if [[ "${cfg}" == '65532:65532 ["pgvigil"]' ]]; then
    pass "recipe: USER and ENTRYPOINT"
  else
    fail "recipe: USER and ENTRYPOINT" "${cfg}"
  fi
  cid="$(podman_ create localhost/pgvigil-recipe:test 2>/dev/null)"
  containers+=("${cid}")
  files="$(podman_ export "${cid}" | tar -t 2>/dev/null)"
  missing=""
  for f in usr/local/bin/pgvigil etc/ssl/certs/ca-certificates.crt etc/passwd etc/group \
           lib64/ld-linux-x86-64.so.2; do
    grep -qx "${f}" <<<"${files}" || missing+=" ${f}"
  done
  if [[ -z "${missing}" ]]; then
    pass "recipe: binary, loader, CA bundle and passwd in the image"
  else
    fail "recipe: image contents" "missing${missing}"
  fi
else
  fail "recipe: image built" "$(tail -5 "${work}/build-recipe.log")"
fi

# --- 2. the real binary ----------------------------------------------------------------------
if [[ ! -x "${binary}" ]]; then
  skip "real image" "no pgvigil binary at ${binary} (build it, or set PGVIGIL_BINARY)"
else
  image="localhost/pgvigil:test"
  if PGVIGIL_IMAGE_DIR="${work}" PGVIGIL_IMAGE="${image}" \
      "${repo}/scripts/build-image.sh" "${binary}" >/dev/null 2>"${work}/build.log"; then
    pass "image built from ${binary}"

    if got="$(podman_ run --rm --network=none "${image}" --version 2>&1)" &&
       [[ "${got}" == *"${version}"* ]]; then
      pass "pgvigil --version in the image (${got})"
    else
      fail "pgvigil --version in the image" "${got}"
    fi

    cat >"${work}/good.toml" <<'EOF'
[probe]
interval = "10s"
timeout = "2s"

[http]
listen = "0.0.0.0:9188"
EOF
    printf '[probe]\ninterval = "soon"\n' >"${work}/bad.toml"
    url="postgresql://pgvigil:secret@db.example.com:5432/app?sslmode=require"
    if got="$(podman_ run --rm --network=none -e PGVIGIL_DATABASE_URL="${url}" \
          -v "${work}/good.toml:/config/pgvigil.toml:ro" "${image}" \
          --config /config/pgvigil.toml --check-config 2>&1)"; then
      pass "pgvigil --check-config in the image"
    else
      fail "pgvigil --check-config in the image" "${got}"
    fi
    if [[ "${got}" == *secret* ]]; then
      fail "--check-config hides the password" "${got}"
    else
      pass "--check-config hides the password"
    fi
    if got="$(podman_ run --rm --network=none -e PGVIGIL_DATABASE_URL="${url}" \
          -v "${work}/bad.toml:/config/pgvigil.toml:ro" "${image}" \
          --config /config/pgvigil.toml --check-config 2>&1)"; then
      fail "bad config rejected in the image" "exit 0: ${got}"
    else
      pass "bad config rejected in the image"
    fi

    user="$(podman_ image inspect --format '{{.Config.User}}' "${image}" 2>&1)"
    if [[ "${user}" == "65532:65532" ]]; then
      pass "image USER is 65532"
    else
      fail "image USER is 65532" "${user}"
    fi

    # The server itself, against a real PostgreSQL on loopback, read-only, as uid 65532.
    live_pg_start && live_run "${image}"
  else
    fail "image built from ${binary}" "$(tail -5 "${work}/build.log")"
  fi
fi

echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[[ "${failed}" == 0 ]]
