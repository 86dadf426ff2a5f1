#!/usr/bin/env bash
# Installs the npm packages the chart's schema generator and tests read the Kubernetes and
# prometheus-operator definitions from, pinned, into $PGVIGIL_TOOLS_DIR/k8s-models (default
# <repo>/build/tools). Idempotent. Prints the node_modules directory on stdout.
#   @kubernetes/client-node  models generated from the Kubernetes OpenAPI (v1.34.0): field
#                            names, types and required fields (scripts/gen-helm-schema.mjs)
#   kubernetes-models, @kubernetes-models/prometheus-operator: validators for whole objects
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${PGVIGIL_TOOLS_DIR:-${repo_root}/build/tools}/k8s-models"
pkgs=(@kubernetes/client-node@1.4.0 kubernetes-models@5.1.0
      @kubernetes-models/prometheus-operator@6.0.0)
stamp="${dir}/.versions"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${pkgs[*]}" && -d "${dir}/node_modules" ]]; then
  echo "${dir}/node_modules"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-k8s-models: npm not found (apt-get install -y npm)" >&2; exit 1; }
mkdir -p "${dir}"
echo "fetch-k8s-models: installing ${pkgs[*]} into ${dir}" >&2
npm install --prefix "${dir}" --no-audit --no-fund --no-save --loglevel=error "${pkgs[@]}" >&2
echo "${pkgs[*]}" >"${stamp}"
echo "${dir}/node_modules"
