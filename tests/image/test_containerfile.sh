#!/usr/bin/env bash
# The repository's real multi-stage Containerfile, built and run offline (opt-in:
# PGVIGIL_CONTAINERFILE=1, since the build compiles pgvigil inside a container, ~6 min on 2 cores).
#   1. base images: docker.io/library/debian:bookworm(-slim) made with debootstrap from this
#      machine's Debian mirror (scripts/debian-base-images.sh, rootfs cached per day);
#   2. `podman build` of Containerfile, apt-get inside it fetching from that same mirror
#      (--network=host; downloaded .debs kept in PGVIGIL_APT_CACHE for the next run);
#   3. the image: FROM scratch runtime (no shell, no apt), size printed, USER 65532;
#      `pgvigil --version`; `--check-config` on the shipped /etc/pgvigil/pgvigil.toml with the
#      URL in the environment (password never echoed);
#   4. the container against a real PostgreSQL 15 on the host's loopback (initdb + pg_ctl into a
#      temp dir), --network=host, --read-only root filesystem, as uid 65532 (checked from the
#      host's /proc): /livez 200, /health 200 with the database "up", /metrics with pg_up 1 and
#      an ok probe; RSS printed; SIGTERM exits 0.
# Skips (never fails) only where podman cannot run containers at all, or when not opted in.
# Final line: "N passed, M failed, K skipped"; exit 1 on failure, 77 when skipped as a whole
# (CTest's SKIP_RETURN_CODE: shown as "Skipped", not counted as a failure), else 0.
#   PGVIGIL_CONTAINERFILE_DIR  work directory (default <repo>/build/containerfile-test; removed)
#   PGVIGIL_APT_CACHE          .deb cache shared by builds (default /var/tmp/pgvigil-apt-archives)
#   PGVIGIL_BASE_CACHE         debootstrap rootfs cache (see scripts/debian-base-images.sh)
#   PGVIGIL_STORAGE_DRIVER     podman storage driver (default: overlay where it works, else vfs)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
work="${PGVIGIL_CONTAINERFILE_DIR:-${repo}/build/containerfile-test}"
apt_cache="${PGVIGIL_APT_CACHE:-/var/tmp/pgvigil-apt-archives}"
version="$(sed -n 's/^project(pgvigil VERSION \([0-9.]*\).*/\1/p' "${repo}/CMakeLists.txt")"
image="localhost/pgvigil:containerfile-test"
base="docker.io/library/debian:bookworm"

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1: ${*:2}"; }
info() { echo "INFO $*"; }
finish() {
  echo "${passed} passed, ${failed} failed, ${skipped} skipped"
  ((failed == 0)) || exit 1
  ((passed > 0 || skipped == 0)) || exit 77
  exit 0
}

if [[ "${PGVIGIL_CONTAINERFILE:-0}" != 1 ]]; then
  skip "Containerfile build" "opt-in (it compiles pgvigil in a container, ~6 min on 2 cores):" \
    "PGVIGIL_CONTAINERFILE=1 ctest -R containerfile (or PGVIGIL_CONTAINERFILE=1 bash $0)"
  finish
fi

# shellcheck source=live.sh
source "${here}/live.sh"
containers=()
cleanup() {
  if [[ -x "${work}/podman" ]]; then
    for c in "${containers[@]}"; do "${work}/podman" rm -f -t 0 "${c}" >/dev/null 2>&1; done
  fi
  live_cleanup
  if [[ -x "${work}/podman" ]]; then
    "${work}/podman" rmi -a -f >/dev/null 2>&1
    # The overlay driver mounts its own directory; take down whatever is left under work.
    awk -v w="${work}/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
      xargs -r umount -l 2>/dev/null
  fi
  rm -rf "${work}"
}
trap cleanup EXIT
rm -rf "${work}"
mkdir -p "${work}" "${apt_cache}"
podman_() { "${work}/podman" "$@"; }

# --- podman: overlay storage where the kernel allows it (no full copy per layer), else vfs ---
driver=""
for d in ${PGVIGIL_STORAGE_DRIVER:-overlay vfs}; do
  rm -rf "${work}/storage" "${work}/runroot"
  if "${repo}/scripts/podman-env.sh" "${work}" "${d}" 2>"${work}/podman-env.log" &&
     podman_ info >"${work}/podman-info.log" 2>&1; then
    driver="${d}"
    break
  fi
done
if [[ -z "${driver}" ]]; then
  skip "Containerfile build" "podman cannot run here: $(tail -2 "${work}/podman-env.log" \
    "${work}/podman-info.log" | tr -s '\n' ' ')"
  finish
fi
info "podman $(podman --version | awk '{print $3}'), storage driver ${driver}"

# --- 1. base images --------------------------------------------------------------------------
start=${SECONDS}
if ! "${repo}/scripts/debian-base-images.sh" "${work}/podman" 2>"${work}/base.log"; then
  fail "base images made with debootstrap" "$(tail -5 "${work}/base.log")"
  finish
fi
pass "base images ${base} and ${base}-slim made with debootstrap ($((SECONDS - start)) s)"
sed 's/^/  /' "${work}/base.log"
if ! out="$(podman_ run --rm --network=none "${base}" true 2>&1)"; then
  skip "Containerfile build" "podman cannot run containers here (no user namespaces or" \
    "cgroups?): ${out}"
  finish
fi

# --- 2. the build ----------------------------------------------------------------------------
# apt-get in the build sees the cached .debs through a private directory of hard links (apt
# locks its archive directory, and parallel runs must not wait on one another); new downloads go
# back to the shared cache afterwards.
archives="${work}/apt-archives"
mkdir -p "${archives}/partial"
find "${apt_cache}" -maxdepth 1 -name '*.deb' -exec cp -l -t "${archives}" {} + 2>/dev/null ||
  find "${apt_cache}" -maxdepth 1 -name '*.deb' -exec cp -t "${archives}" {} +
start=${SECONDS}
if podman_ build --network=host --pull=never -v "${archives}:/var/cache/apt/archives" \
    -t "${image}" -f "${repo}/Containerfile" "${repo}" >"${work}/build.log" 2>&1; then
  build_s=$((SECONDS - start))
  pass "podman build -f Containerfile (${build_s} s)"
  find "${archives}" -maxdepth 1 -name '*.deb' -exec cp -n -t "${apt_cache}" {} +
  info "apt-get in the build: $(grep -E '^(Fetched|Need to get) ' "${work}/build.log" |
    tr '\n' ' ')"
else
  fail "podman build -f Containerfile" "$(grep -E 'error|Error' "${work}/build.log" | head -5)
$(tail -5 "${work}/build.log")"
  finish
fi

# --- 3. the image ------------------------------------------------------------------------------
size="$(podman_ image inspect --format '{{.Size}}' "${image}" 2>&1)"
if [[ "${size}" =~ ^[0-9]+$ ]]; then
  info "image size $(awk -v b="${size}" 'BEGIN { printf "%.1f MiB (%d bytes)", b / 1048576, b }')"
  # The scratch runtime holds pgvigil and its libraries (~20 MiB); a Debian base alone is ~75.
  if ((size < 40 * 1048576)); then
    pass "image is small (< 40 MiB)"
  else
    fail "image is small (< 40 MiB)" "${size} bytes"
  fi
else
  fail "image size" "${size}"
fi
cid="$(podman_ create "${image}" 2>/dev/null)"
containers+=("${cid}")
files="$(podman_ export "${cid}" | tar -t 2>/dev/null | sed 's|^\./||; s|/$||')"
missing=""
for f in usr/local/bin/pgvigil etc/pgvigil/pgvigil.toml etc/ssl/certs/ca-certificates.crt \
         etc/passwd etc/group lib64/ld-linux-x86-64.so.2; do
  grep -qx "${f}" <<<"${files}" || missing+=" ${f}"
done
extra="$(grep -xE 'bin/(ba)?sh|usr/bin/(ba)?sh|usr/bin/apt(-get)?|usr/bin/dpkg' <<<"${files}" |
  tr '\n' ' ')"
if [[ -z "${missing}" && -z "${extra}" ]]; then
  pass "runtime stage: pgvigil, loader, CA bundle, passwd, config; no shell or apt" \
       "($(wc -l <<<"${files}") entries)"
else
  fail "runtime stage contents" "missing:${missing:- none}; unexpected: ${extra:-none}"
fi
cfg="$(podman_ image inspect --format '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' \
  "${image}" 2>&1)"
if [[ "${cfg}" == '65532:65532 ["pgvigil"] ["--config","/etc/pgvigil/pgvigil.toml"]' ]]; then
  pass "USER 65532, ENTRYPOINT pgvigil, CMD the shipped config"
else
  fail "USER, ENTRYPOINT and CMD" "${cfg}"
fi

if got="$(podman_ run --rm --network=none "${image}" --version 2>&1)" &&
   [[ "${got}" == *"${version}"* ]]; then
  pass "pgvigil --version (${got})"
else
  fail "pgvigil --version" "${got}"
fi

url="postgresql://pgvigil:s3cret-in-env@db.example.com:5432/app?sslmode=require"
if got="$(podman_ run --rm --network=none --read-only -e PGVIGIL_DATABASE_URL="${url}" \
      "${image}" --config /etc/pgvigil/pgvigil.toml --check-config 2>&1)"; then
  pass "--check-config on the shipped config with the URL in the environment"
else
  fail "--check-config on the shipped config" "${got}"
fi
if [[ "${got}" == *s3cret* ]]; then
  fail "--check-config hides the password" "${got}"
else
  pass "--check-config hides the password"
fi

# --- 4. against a real PostgreSQL on the host's loopback ---------------------------------------
live_pg_start || finish
live_run "${image}"

finish
