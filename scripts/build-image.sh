#!/usr/bin/env bash
# Builds the pgvigil container image OFFLINE (no registry reachable): an image FROM scratch that
# holds the locally built binary, the shared libraries ldd resolves for it (and the dynamic
# loader), CA certificates for TLS to Neon, /etc/passwd and /etc/group with the nonroot user 65532,
# and pgvigil's default config when config/pgvigil.toml exists (scripts/image-rootfs.sh, the same
# recipe as the Containerfile's runtime stage). USER 65532, ENTRYPOINT pgvigil.
# The Containerfile at the repository root builds the binary too (tests/image/test_containerfile.sh).
#
# Podman runs rootful with its storage under the work directory and a containers.conf that is
# known to work on these machines (scripts/podman-env.sh).
#
# Usage: scripts/build-image.sh [BINARY]
#   BINARY                 default: $PGVIGIL_BINARY, else <repo>/build/pgvigil
#   PGVIGIL_IMAGE_DIR      work directory (default <repo>/build/image)
#   PGVIGIL_IMAGE          image name (default localhost/pgvigil:<version from CMakeLists.txt>)
#   PGVIGIL_IMAGE_ARCHIVE  also `podman save` the image to this OCI archive path
#   PGVIGIL_STORAGE_DRIVER podman storage driver (default vfs: works in nested containers)
# Afterwards "$PGVIGIL_IMAGE_DIR/podman" runs podman with the same storage, e.g.
#   build/image/podman run --rm --network=none localhost/pgvigil:0.1.0 --version
# The image name is printed on stdout (last line); progress goes to stderr.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
binary="${1:-${PGVIGIL_BINARY:-${repo_root}/build/pgvigil}}"
work="${PGVIGIL_IMAGE_DIR:-${repo_root}/build/image}"
driver="${PGVIGIL_STORAGE_DRIVER:-vfs}"
version="$(sed -n 's/^project(pgvigil VERSION \([0-9.]*\).*/\1/p' "${repo_root}/CMakeLists.txt")"
image="${PGVIGIL_IMAGE:-localhost/pgvigil:${version:-dev}}"

log() { echo "build-image: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -f "${binary}" && -x "${binary}" ]] ||
  die "no executable at ${binary}; build it first (cmake --build build --target pgvigil) or pass its path"
binary="$(cd "$(dirname "${binary}")" && pwd)/$(basename "${binary}")"

"${repo_root}/scripts/podman-env.sh" "${work}" "${driver}"
work="$(cd "${work}" && pwd)"

# --- root filesystem (the same recipe as the Containerfile's runtime stage) ------------------
ctx="${work}/context"
rm -rf "${ctx}"
config=""
[[ -f "${repo_root}/config/pgvigil.toml" ]] && config="${repo_root}/config/pgvigil.toml"
"${repo_root}/scripts/image-rootfs.sh" "${binary}" "${ctx}/rootfs" ${config:+"${config}"} >&2

cat >"${ctx}/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 9188
LABEL org.opencontainers.image.title="pgvigil" org.opencontainers.image.version="${version}"
ENTRYPOINT ["pgvigil"]
EOF

# --- build ----------------------------------------------------------------------------------
log "building ${image} in ${work} (storage driver ${driver})"
"${work}/podman" build --network=none --pull=never -t "${image}" -f "${ctx}/Containerfile" \
  "${ctx}" >&2
if [[ -n "${PGVIGIL_IMAGE_ARCHIVE:-}" ]]; then
  rm -f "${PGVIGIL_IMAGE_ARCHIVE}"
  "${work}/podman" save --format oci-archive -o "${PGVIGIL_IMAGE_ARCHIVE}" "${image}" >&2
  log "saved ${PGVIGIL_IMAGE_ARCHIVE}"
fi
echo "${image}"
