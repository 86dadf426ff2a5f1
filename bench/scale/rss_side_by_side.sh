#!/usr/bin/env bash
# Two (or more) pgvigil builds side by side on one scale cluster, for memory work: each on its
# defaults with stats.election = "off" (so each one collects, as a lone sidecar would), each
# scraped every 15 s, and every 30 s one line with the time and each build's RssAnon in MiB.
# Same database, same moment, so what differs is the build.
#   bench/scale/rss_side_by_side.sh [--size large] [--minutes 20] BINARY BINARY...
# Prints "# HH:MM:SS binaries..." then "HH:MM:SS mib mib ..."; ends with the mean and maximum of
# each column. Needs postgresql-15 (apt-get install); builds nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
size=large minutes=20
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --*) echo "rss_side_by_side.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--size S] [--minutes N] BINARY BINARY..." >&2; exit 2; }
pgbin=/usr/lib/postgresql/15/bin
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
work=$(mktemp -d /tmp/pgvigil-rss.XXXXXX)
chmod 755 "$work"
holder="" pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/scale/cluster.sh
. "$root/bench/scale/cluster.sh"
port=$(free_port) VIGIL_PW=$(secret) EXPORTER_PW=$(secret)
export VIGIL_PW EXPORTER_PW
start_scale_cluster "$size" "$work" "$port" >&2
ports=() i=0
for bin in "$@"; do
  vport=$(free_port)
  ports+=("$vport")
  printf '[http]\nlisten = "127.0.0.1:%s"\n[stats]\nelection = "off"\n' "$vport" >"$work/p$i.toml"
  PGVIGIL_DATABASE_URL="postgresql://vigil:$VIGIL_PW@127.0.0.1:$port/postgres?sslmode=disable" \
    "$bin" --config "$work/p$i.toml" >"$work/p$i.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done
echo "# $(date +%T) $*"
end=$(($(date +%s) + minutes * 60)) n=0
while [ "$(date +%s)" -lt "$end" ]; do
  for vport in "${ports[@]}"; do curl -s -m 10 -o /dev/null "http://127.0.0.1:$vport/metrics" || true; done
  if [ $((n % 2)) = 0 ]; then
    line=$(date +%T)
    for p in "${pids[@]}"; do line="$line $(awk '/^RssAnon/ {printf "%.1f", $2 / 1024}' "/proc/$p/status")"; done
    echo "$line"
  fi
  n=$((n + 1))
  sleep 15
done | tee "$work/series"
awk '{for (c = 2; c <= NF; c++) {s[c] += $c; if ($c > m[c]) m[c] = $c} n++; k = NF}
     END {printf "mean"; for (c = 2; c <= k; c++) printf " %.1f", s[c] / n;
          printf "; max"; for (c = 2; c <= k; c++) printf " %.1f", m[c]; print ""}' "$work/series"
