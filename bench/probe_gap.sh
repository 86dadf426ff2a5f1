#!/usr/bin/env bash
# Probe cadence under load (issue 18): one throwaway PostgreSQL 15 of a scale size
# (bench/scale/setup.sh: large = 200 databases, 10,000 tables, 5,000 pg_stat_statements entries,
# 300 idle connections held by bench/scale/hold_connections.py), pgvigil probing every 1 s while
# its statistics and samplers run on short intervals (stats 5 s, activity 2 s, statements 10 s)
# so they meet the probe often. /health is polled every 20 ms; each new database.last_probe_at is
# one probe (by traffic, probe.reuse_traffic: the end of the job statement that stood for it; the
# "by traffic" column counts those), and the gaps between them give p50/p99/max. Prints one
# Markdown table row per binary.
#   PGVIGIL_BIN   binary to measure (default build/pgvigil); several, space-separated
#   BENCH_SIZE    small | medium | large (default large)
#   BENCH_SECONDS measuring time per binary (default 180)
# Needs postgresql-15 (Debian); run as root (the server runs as postgres) or as postgres.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
bins=${PGVIGIL_BIN:-$root/build/pgvigil}
size=${BENCH_SIZE:-large}
seconds=${BENCH_SECONDS:-180}

work=$(mktemp -d /tmp/pgvigil-gap.XXXXXX)
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
agent_pid="" holder=""
cleanup() {
  trap - INT TERM EXIT
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/scale/cluster.sh
. "$root/bench/scale/cluster.sh"
pg_port=$(free_port)
export VIGIL_PW EXPORTER_PW
VIGIL_PW=$(secret) EXPORTER_PW=$(secret)
start_scale_cluster "$size" "$work" "$pg_port" || exit 2

echo "| binary | probes | by traffic | gap p50 | gap p99 | gap max | interval + 50 ms |"
echo "|---|---|---|---|---|---|---|"
for bin in $bins; do
  port=$(free_port)
  cat >"$work/pgvigil.toml" <<TOML
[database]
url = "postgresql://vigil:$VIGIL_PW@127.0.0.1:$pg_port/postgres?sslmode=disable"
[probe]
interval = "1s"
timeout = "500ms"
[sampling]
activity_interval = "2s"
statements_interval = "10s"
[stats]
interval = "5s"
[http]
listen = "127.0.0.1:$port"
[log]
level = "warn"
TOML
  "$bin" --config "$work/pgvigil.toml" >"$work/pgvigil.log" 2>&1 &
  agent_pid=$!
  python3 "$root/bench/probe_gap.py" --url "http://127.0.0.1:$port/health" \
    --seconds "$seconds" --label "$(basename "$(dirname "$bin")")/$(basename "$bin")" ||
    tail -n 5 "$work/pgvigil.log" >&2
  kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
done
