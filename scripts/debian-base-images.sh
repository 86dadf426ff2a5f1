#!/usr/bin/env bash
# Makes the Containerfile's base images OFFLINE from Debian packages, under the exact names it
# uses: docker.io/library/debian:bookworm and docker.io/library/debian:bookworm-slim.
#
# `debootstrap --variant=minbase bookworm` from this machine's own Debian mirror (found with
# `apt-get indextargets`, i.e. whatever /etc/apt/sources.list{,.d} configure), with the rootfs's
# apt sources set to the same mirror (bookworm, bookworm-updates and bookworm-security when this
# machine uses them), so that `apt-get` inside `podman build --network=host` fetches from where
# this machine does. Both tags name the same image (a local stand-in, not Docker's slim image).
#
# The rootfs tarball is cached per day (one debootstrap a day, ~35 s; a rerun only imports it):
#   PGVIGIL_BASE_CACHE     cache directory (default /var/tmp/pgvigil-base-images)
#   PGVIGIL_DEBIAN_MIRROR  override the mirror (default: this machine's bookworm source)
#
# Usage: scripts/debian-base-images.sh PODMAN   (PODMAN: the podman command to import with, e.g.
# the build/image/podman wrapper scripts/build-image.sh writes). Progress goes to stderr.
set -euo pipefail

podman_cmd="${1:?usage: $0 PODMAN (the podman command whose storage receives the images)}"
cache="${PGVIGIL_BASE_CACHE:-/var/tmp/pgvigil-base-images}"
suite=bookworm
images=("docker.io/library/debian:${suite}" "docker.io/library/debian:${suite}-slim")

log() { echo "base-images: $*" >&2; }
die() { log "$*"; exit 1; }

# --- this machine's Debian sources ----------------------------------------------------------
# "URI RELEASE" for every configured Debian index (apt knows both the one-line and the deb822
# formats; this needs `apt-get update` to have run once, as installing anything does).
targets="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' \
  2>/dev/null | sort -u || true)"
uri_for() { awk -v r="$1" '$2 == r { sub(/\/$/, "", $1); print $1; exit }' <<<"${targets}"; }
mirror="${PGVIGIL_DEBIAN_MIRROR:-$(uri_for "${suite}")}"
[[ -n "${mirror}" ]] || die "no Debian ${suite} source in this machine's apt sources" \
  "(apt-get indextargets found none); run apt-get update, or set PGVIGIL_DEBIAN_MIRROR"
updates="$(uri_for "${suite}-updates")"
security="$(uri_for "${suite}-security")"
sources="Types: deb
URIs: ${mirror}
Suites: ${suite}${updates:+ ${suite}-updates}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
if [[ -n "${security}" ]]; then
  sources+="
Types: deb
URIs: ${security}
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
fi

# --- the rootfs tarball, cached per day and per set of sources ------------------------------
key="$(date -u +%Y%m%d)-$(printf '%s' "${sources}" | sha256sum | cut -c1-12)"
tarball="${cache}/${suite}-minbase-${key}.tar"
mkdir -p "${cache}"
exec 9>"${cache}/.lock"
flock 9 # one debootstrap at a time when several test runs share the cache

if [[ -s "${tarball}" ]]; then
  log "cached rootfs ${tarball}"
else
  if ! command -v debootstrap >/dev/null; then
    [[ "$(id -u)" == 0 ]] || die "debootstrap is missing; apt-get install -y debootstrap"
    log "installing debootstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
  fi
  rootfs="${cache}/rootfs-${key}"
  rm -rf "${rootfs}"
  log "debootstrap --variant=minbase ${suite} from ${mirror}"
  start=${SECONDS}
  if ! debootstrap --variant=minbase "${suite}" "${rootfs}" "${mirror}" \
      >"${cache}/debootstrap.log" 2>&1; then
    tail -5 "${cache}/debootstrap.log" >&2
    rm -rf "${rootfs}"
    die "debootstrap failed (log: ${cache}/debootstrap.log)"
  fi
  # Like Docker's debian images: deb822 sources, no downloaded package lists or .debs, no
  # translations fetched by apt-get update, no host identity; the runtime provides /dev.
  rm -f "${rootfs}/etc/apt/sources.list" "${rootfs}/etc/hostname" "${rootfs}/etc/resolv.conf"
  printf '%s' "${sources}" >"${rootfs}/etc/apt/sources.list.d/debian.sources"
  echo 'Acquire::Languages "none";' >"${rootfs}/etc/apt/apt.conf.d/docker-no-languages"
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/* \
    "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/var/log/* "${rootfs}"/dev/*
  tar -C "${rootfs}" --numeric-owner -cf "${tarball}.tmp" .
  mv "${tarball}.tmp" "${tarball}"
  rm -rf "${rootfs}"
  log "rootfs ready in $((SECONDS - start)) s: ${tarball} ($(du -h "${tarball}" | cut -f1))"
  # Older days' tarballs are superseded.
  find "${cache}" -maxdepth 1 -name "${suite}-minbase-*.tar" ! -name "$(basename "${tarball}")" \
    -delete
fi

# --- import and tag ---------------------------------------------------------------------------
id="$(${podman_cmd} import --change 'CMD ["bash"]' --message "debootstrap minbase ${suite} ${key}" \
  "${tarball}" "${images[0]}" 2>/dev/null | tail -1)" || die "podman import of ${tarball} failed"
${podman_cmd} tag "${images[0]}" "${images[1]}" >&2 || die "podman tag ${images[1]} failed"
id="${id#sha256:}"
log "imported ${images[*]} (${id:0:12})"
