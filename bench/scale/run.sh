#!/usr/bin/env bash
# Scale benchmark (issue 18): pgvigil on its defaults vs Debian's postgres_exporter 0.11.1
# (scraped every 60 s and every 15 s), one at a time, against one throwaway PostgreSQL 15 per
# size (bench/scale/setup.sh). Per tool: database execution time and statements per minute
# (pg_stat_statements, the tool's own role only) and RSS. Prints one Markdown table per size.
#   bench/scale/run.sh [--sizes small,medium,large] [--minutes 3] [--warmup 60]
#   --minutes   the measured window per tool and size (default 3; e.g. 60 for the hour-long run)
#   --tools     which runs (default pgvigil,e60,e15: the exporter scraped every 60 s and 15 s)
#   --rss-every N  also print each tool's RssAnon every N s (the hour-long run:
#               --sizes large --tools pgvigil --minutes 60 --rss-every 60)
#   PGVIGIL_BIN  the binary to measure (default: a Release build in build-bench/)
#   BENCH_PGVIGIL_TOML  extra pgvigil settings (TOML), e.g. $'[probe]\nreuse_traffic = false'
# About (warm-up + window) x 3 tools per size, plus setup (large: ~2 minutes).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sizes=small,medium,large minutes=3 warmup=60 tools=pgvigil,e60,e15 rss_every=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --tools) tools=$2; shift 2 ;;
    --rss-every) rss_every=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
pgbin=/usr/lib/postgresql/15/bin
exporter=${EXPORTER_BIN:-/usr/bin/prometheus-postgres-exporter}
[ -x "$exporter" ] && [ -x "$pgbin/postgres" ] || {
  echo "run.sh: needs postgresql-15 and prometheus-postgres-exporter (apt-get install)" >&2; exit 2; }
if [ -n "${PGVIGIL_BIN:-}" ]; then
  pgvigil=$PGVIGIL_BIN
else
  build=${BENCH_BUILD_DIR:-$root/build-bench}
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPGVIGIL_TESTS=OFF \
    -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
  cmake --build "$build" -j2 --target pgvigil >/dev/null
  pgvigil=$build/pgvigil
fi
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
work="" holder=""
cleanup() {
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
  if [ -n "$work" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  holder="" work=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/scale/cluster.sh
. "$root/bench/scale/cluster.sh"
export VIGIL_PW EXPORTER_PW
echo "pgvigil: $("$pgvigil" --version); exporter: $("$exporter" --version 2>&1 | head -1)"
for size in ${sizes//,/ }; do
  work=$(mktemp -d /tmp/pgvigil-scale.XXXXXX)
  port=$(free_port) VIGIL_PW=$(secret) EXPORTER_PW=$(secret)
  start_scale_cluster "$size" "$work" "$port" || exit 2
  python3 "$root/bench/scale/measure_scale.py" --size "$size" --work "$work" --socket-dir "$work" \
    --port "$port" --pgvigil "$pgvigil" --exporter "$exporter" --minutes "$minutes" --warmup "$warmup" \
    --tools "$tools" --rss-every "$rss_every" \
    --vigil-url "postgresql://vigil:$VIGIL_PW@127.0.0.1:$port/postgres?sslmode=disable" \
    --exporter-url "postgresql://exporter:$EXPORTER_PW@127.0.0.1:$port/postgres?sslmode=disable" \
    --json "${BENCH_JSON_DIR:-/tmp}/pgvigil-scale-$size.json"
  cleanup
done
