#!/usr/bin/env bash
# Installs what is needed, builds pgvigil, starts a throwaway PostgreSQL 15 (initdb in a temp
# dir, pg_stat_statements preloaded) and runs pgvigil against it in the foreground.
# Ctrl-C stops pgvigil and PostgreSQL and removes the temp dir.
#   PGVIGIL_DEMO_PORT   HTTP port for pgvigil (default 9188)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" run
"$root/scripts/build.sh" "$root/build" -DPGVIGIL_TESTS=OFF

http_port=${PGVIGIL_DEMO_PORT:-9188}
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/pgvigil-demo.XXXXXX)
chmod 755 "$work"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$work"
  as_pg=(runuser -u postgres --)
fi
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
password="demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

agent_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "pgvigil demo: stopping"
  if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
  echo "pgvigil demo: stopped and cleaned up"
}
trap cleanup INT TERM EXIT

echo "pgvigil demo: starting PostgreSQL 15 on 127.0.0.1:$pg_port (data in $work)"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
"${as_pg[@]}" psql -h "$work" -p "$pg_port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE vigil LOGIN PASSWORD '$password' IN ROLE pg_monitor" \
  -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null

cat > "$work/pgvigil.toml" <<CONF
[database]
url_env = "PGVIGIL_DEMO_URL"

[http]
listen = "127.0.0.1:$http_port"

[probe]
interval = "5s"
CONF

export PGVIGIL_DEMO_URL="postgresql://vigil:$password@127.0.0.1:$pg_port/postgres?sslmode=disable"
cat <<MSG
pgvigil demo: open
  http://127.0.0.1:$http_port/health      JSON health for apps and people
  http://127.0.0.1:$http_port/metrics     Prometheus metrics
  http://127.0.0.1:$http_port/livez  /readyz  /startupz  /health/db   Kubernetes probes
  http://127.0.0.1:$http_port/queries     slow-query samples
pgvigil demo: press Ctrl-C to stop everything
MSG
"$root/build/pgvigil" --config "$work/pgvigil.toml" &
agent_pid=$!
wait "$agent_pid" || true
agent_pid=""
