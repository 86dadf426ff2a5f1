#!/usr/bin/env bash
# Benchmarks pgvigil against Debian's prometheus-postgres-exporter on one throwaway PostgreSQL 15
# and prints a Markdown table (pgvigil, exporter, ratio) with PASS/FAIL per target from issue 8.
# Installs wrk, prometheus-postgres-exporter and postgresql-15 with apt-get when missing, builds
# pgvigil (Release) in build-bench/ and rewrites docs/benchmarks.md. About 2-3 minutes.
#   PGVIGIL_BIN          use this binary instead of building
#   BENCH_BUILD_DIR      build directory (default build-bench)
#   BENCH_IDLE_SECONDS   idle window for idle CPU / background statements (default 60)
#   BENCH_SCRAPES        /metrics scrapes per tool (default 1000)
#   BENCH_WRK_SECONDS    wrk duration per tool (default 10)
#   BENCH_WRITE_DOCS     1 (default) rewrites docs/benchmarks.md, 0 only prints
# Exit status: 0 when every target passes, 1 when one fails, 2 on setup errors.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
exporter=${EXPORTER_BIN:-prometheus-postgres-exporter}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v "$exporter" >/dev/null || missing+=(prometheus-postgres-exporter)
[ -x "$pgbin/postgres" ] || missing+=(postgresql-15)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}" >&2
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi
# Debian's package starts its own exporter as a service; we run ours on a free port instead.

if [ -n "${PGVIGIL_BIN:-}" ]; then
  pgvigil=$PGVIGIL_BIN
else
  build=${BENCH_BUILD_DIR:-$root/build-bench}
  # -Wno-error=restrict: GCC 12 reports a false -Wrestrict in std::string at -O3.
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPGVIGIL_TESTS=OFF \
    -DCMAKE_CXX_FLAGS=-Wno-error=restrict >/dev/null
  cmake --build "$build" -j"$(nproc)" --target pgvigil >/dev/null
  pgvigil=$build/pgvigil
fi

work=$(mktemp -d /tmp/pgvigil-bench.XXXXXX)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi
measure_pid=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$measure_pid" ]; then kill -TERM "$measure_pid" 2>/dev/null || true; wait "$measure_pid" 2>/dev/null || true; fi
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$work/pids"
  fi
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
secret() { od -An -N9 -tx1 /dev/urandom | tr -d ' \n'; }
vigil_pw=$(secret)
exporter_pw=$(secret)

echo "bench: PostgreSQL 15 on 127.0.0.1:$pg_port (data in $work)" >&2
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_stat_statements'
log_connections = on
fsync = off
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
"${as_pg[@]}" psql -h "$work" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
  -c "CREATE ROLE vigil LOGIN PASSWORD '$vigil_pw' IN ROLE pg_monitor" \
  -c "CREATE ROLE exporter LOGIN PASSWORD '$exporter_pw' IN ROLE pg_monitor" >/dev/null

docs=""
[ "${BENCH_WRITE_DOCS:-1}" = 1 ] && docs="$root/docs/benchmarks.md"
python3 "$root/bench/measure.py" --work "$work" --pg-socket-dir "$work" --pg-port "$pg_port" \
  --pg-log "$work/postgres.log" --pgbin "$pgbin" --pgvigil "$pgvigil" --exporter "$exporter" \
  --vigil-url "postgresql://vigil:$vigil_pw@127.0.0.1:$pg_port/postgres?sslmode=disable" \
  --exporter-url "postgresql://exporter:$exporter_pw@127.0.0.1:$pg_port/postgres?sslmode=disable" \
  --scrapes "${BENCH_SCRAPES:-1000}" --idle-seconds "${BENCH_IDLE_SECONDS:-60}" \
  --wrk-seconds "${BENCH_WRK_SECONDS:-10}" --docs "$docs" &
measure_pid=$!
status=0
wait "$measure_pid" || status=$?
measure_pid=""
if [ "$status" -gt 1 ]; then
  echo "bench: measurement failed (exit $status); logs:" >&2
  tail -n 20 "$work"/pgvigil.log "$work"/exporter.log "$work"/postgres.log 2>/dev/null >&2 || true
fi
exit "$status"
