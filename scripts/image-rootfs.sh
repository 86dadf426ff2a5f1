#!/usr/bin/env bash
# Assembles the root filesystem of pgvigil's FROM-scratch runtime image in DEST: the binary as
# /usr/local/bin/pgvigil, every shared library ldd resolves for it and the dynamic loader (at the
# paths the loader looks in), the CA bundle for TLS to Neon and managed PostgreSQL,
# /etc/passwd and /etc/group with the unprivileged user nonroot (65532, like distroless), an
# nsswitch.conf, an empty world-writable /tmp, and the config CONFIG at /etc/pgvigil/pgvigil.toml
# when given. No shell, no package manager.
# Used by the Containerfile (inside its build stage) and by scripts/build-image.sh (offline).
#
# Usage: scripts/image-rootfs.sh BINARY DEST [CONFIG]
set -euo pipefail

binary="${1:?usage: $0 BINARY DEST [CONFIG]}"
dest="${2:?usage: $0 BINARY DEST [CONFIG]}"
config="${3:-}"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

die() { echo "image-rootfs: $*" >&2; exit 1; }
[[ -f "${binary}" && -x "${binary}" ]] || die "no executable at ${binary}"
[[ -f "${ca_bundle}" ]] || die "${ca_bundle} is missing; apt-get install -y ca-certificates"

mkdir -p "${dest}/usr/local/bin" "${dest}/etc/ssl/certs" "${dest}/etc/pgvigil" "${dest}/tmp"
chmod 1777 "${dest}/tmp"
install -m 0755 "${binary}" "${dest}/usr/local/bin/pgvigil"

# Every library ldd resolves, copied (symlinks followed) to the path the loader will look in;
# the loader itself is the line without "=>".
libs="$(ldd "${binary}" 2>&1)" || die "ldd failed on ${binary}: ${libs}"
if grep -q "not found" <<<"${libs}"; then
  die "unresolved libraries: $(grep 'not found' <<<"${libs}" | tr -s ' \t' ' ')"
fi
count=0
while read -r path; do
  [[ -n "${path}" && -e "${path}" ]] || continue
  mkdir -p "${dest}$(dirname "${path}")"
  cp -L "${path}" "${dest}${path}"
  count=$((count + 1))
done < <(awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }' <<<"${libs}")
echo "image-rootfs: copied ${count} shared objects (ldd)" >&2

cp -L "${ca_bundle}" "${dest}/etc/ssl/certs/ca-certificates.crt"
cat >"${dest}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
EOF
cat >"${dest}/etc/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
echo "hosts: files dns" >"${dest}/etc/nsswitch.conf"
if [[ -n "${config}" ]]; then
  install -m 0644 "${config}" "${dest}/etc/pgvigil/pgvigil.toml"
fi
