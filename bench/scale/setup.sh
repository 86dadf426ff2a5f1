#!/usr/bin/env bash
# Builds one scale of the benchmark in a throwaway PostgreSQL 15 and leaves it running:
#   setup.sh SIZE WORKDIR PORT      SIZE = small | medium | large
#   small  :   1 database,     10 tables,   100 pg_stat_statements entries,   5 connections
#   medium :  50 databases,  2,000 tables, 2,000 entries, 100 connections
#   large  : 200 databases, 10,000 tables, 5,000 entries, 300 connections
# (connections are held by bench/scale/hold_connections.py, started by run.sh). Fast on purpose:
# one database is built with its tables in one transaction, the others are CREATE DATABASE ...
# TEMPLATE copies of it; fsync is off (a benchmark cluster, thrown away after).
# Roles: vigil and exporter (pg_monitor, password $VIGIL_PW / $EXPORTER_PW), bench (owner of
# the data, runs the statements). Prints nothing on success but the elapsed time.
set -euo pipefail
size=$1 work=$2 port=$3
pgbin=/usr/lib/postgresql/15/bin
case "$size" in
  small) dbs=1 tables=10 entries=100 ;;
  medium) dbs=50 tables=2000 entries=2000 ;;
  large) dbs=200 tables=10000 entries=5000 ;;
  *) echo "setup.sh: unknown size $size (small|medium|large)" >&2; exit 2 ;;
esac
per_db_tables=$((tables / dbs)) per_db_entries=$((entries / dbs))
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
start=$(date +%s)
mkdir -p "$work" && chmod 755 "$work"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work'
max_connections = 450
shared_buffers = 128MB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 10000
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
psql_su=("${as_pg[@]}" psql -h "$work" -p "$port" -U postgres -q -v ON_ERROR_STOP=1)
"${psql_su[@]}" -d postgres \
  -c "CREATE EXTENSION pg_stat_statements" \
  -c "CREATE ROLE vigil LOGIN PASSWORD '${VIGIL_PW:?}' IN ROLE pg_monitor" \
  -c "CREATE ROLE exporter LOGIN PASSWORD '${EXPORTER_PW:?}' IN ROLE pg_monitor" \
  -c "CREATE ROLE bench LOGIN CREATEDB" \
  -c "CREATE DATABASE bench_template OWNER bench" >/dev/null
# The template: its tables and a few rows each, in one transaction.
"${psql_su[@]}" -U bench -d bench_template -1 -c "
DO \$\$ BEGIN
  FOR i IN 1..$per_db_tables LOOP
    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
    EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 20) g', i);
  END LOOP;
END \$\$" >/dev/null
for i in $(seq 1 "$dbs"); do
  printf 'CREATE DATABASE bench_%03d TEMPLATE bench_template OWNER bench;\n' "$i"
done | "${psql_su[@]}" -d postgres >/dev/null
"${psql_su[@]}" -d postgres -c "DROP DATABASE bench_template" >/dev/null
# Distinct statements: table x IN-list length give distinct queryids, per database.
sql=$work/statements.sql
python3 - "$per_db_tables" "$per_db_entries" >"$sql" <<'PY'
import sys
tables, n = int(sys.argv[1]), int(sys.argv[2])
for j in range(n):
    ids = ",".join(str(k) for k in range(1, j // tables + 2))
    print(f"SELECT count(*) FROM t{j % tables + 1} WHERE id IN ({ids});")
PY
for i in $(seq 1 "$dbs"); do
  "${psql_su[@]}" -U bench -d "$(printf 'bench_%03d' "$i")" -f "$sql" >/dev/null
done
"${psql_su[@]}" -d postgres -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
echo "setup $size: $dbs databases, $tables tables, $entries statements in $(( $(date +%s) - start ))s" >&2
