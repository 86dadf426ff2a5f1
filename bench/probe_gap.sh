#!/usr/bin/env bash
# Probe cadence under load (issue 18): one throwaway PostgreSQL 15 with BENCH_DATABASES databases
# of BENCH_TABLES tables each and pg_stat_statements, pgvigil probing every 1 s while its
# statistics and samplers run on short intervals (stats 5 s, activity 2 s, statements 10 s).
# /health is polled every 20 ms; each new database.last_probe_at is one probe, and the gaps
# between them give p50/p99/max. Prints one Markdown table row per binary.
#   PGVIGIL_BIN       binary to measure (default build/pgvigil); several, space-separated
#   BENCH_DATABASES   databases (default 50)       BENCH_TABLES  tables per database (default 40)
#   BENCH_SECONDS     measuring time per binary (default 180)
# Needs postgresql-15 (Debian); run as root (the server runs as postgres) or as postgres.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pgbin=/usr/lib/postgresql/15/bin
bins=${PGVIGIL_BIN:-$root/build/pgvigil}
dbs=${BENCH_DATABASES:-50}
tables=${BENCH_TABLES:-40}
seconds=${BENCH_SECONDS:-180}

work=$(mktemp -d /tmp/pgvigil-gap.XXXXXX)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi
agent_pid=""
cleanup() {
  trap - INT TERM EXIT
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust --auth-host=trust >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_stat_statements'
max_connections = 200
fsync = off
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
psql_pg() { "${as_pg[@]}" psql -h "$work" -p "$pg_port" -U postgres -q -v ON_ERROR_STOP=1 "$@"; }
psql_pg -d postgres -c "CREATE EXTENSION pg_stat_statements" >/dev/null
echo "probe_gap: $dbs databases x $tables tables on 127.0.0.1:$pg_port" >&2
for i in $(seq 1 "$dbs"); do
  psql_pg -d postgres -c "CREATE DATABASE bench_$i" >/dev/null
  psql_pg -d "bench_$i" -c "DO \$\$ BEGIN FOR t IN 1..$tables LOOP
      EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', t);
      EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 100) g', t);
      EXECUTE format('SELECT count(*) FROM t%s WHERE v = %L', t, 'x');
    END LOOP; END \$\$" >/dev/null
done

echo "| binary | probes | gap p50 | gap p99 | gap max | interval + 50 ms |"
echo "|---|---|---|---|---|---|"
for bin in $bins; do
  port=$(free_port)
  cat >"$work/pgvigil.toml" <<TOML
[database]
url = "postgresql://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
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
