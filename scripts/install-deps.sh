#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages pgvigil needs; only what is missing.
#   scripts/install-deps.sh run    build + run pgvigil with a throwaway local PostgreSQL
#   scripts/install-deps.sh test   everything the test suite needs (a superset of run)
set -euo pipefail
set_name=${1:-run}

run_pkgs=(g++ cmake make pkg-config ca-certificates curl
  libpq-dev libcpp-httplib-dev prometheus-cpp-dev libtomlplusplus-dev nlohmann-json3-dev
  postgresql-15)
test_pkgs=(catch2 pgbouncer prometheus prometheus-postgres-exporter python3 python3-yaml clang-14
  libclang-rt-14-dev
  npm unzip podman runc debootstrap iproute2 procps)

case "$set_name" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  # A machine may carry its own Node.js with npm (e.g. NodeSource); Debian's npm would clash.
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "pgvigil: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
  exit 1
fi
echo "pgvigil: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package may create and start a default cluster; pgvigil's scripts and
# tests start their own throwaway servers and do not use it.
