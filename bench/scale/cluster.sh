# Sourced by bench/scale/run.sh, bench/scale/rss_side_by_side.sh and bench/probe_gap.sh: one scale
# cluster with its idle sessions.
#   start_scale_cluster SIZE WORKDIR PORT
# Builds SIZE with setup.sh (VIGIL_PW and EXPORTER_PW must be set and exported), then holds the
# size's idle connections with hold_connections.py in the background; sets `holder` to its pid
# (the caller kills it). Needs `root` (the repository) and `as_pg` (runuser prefix or empty).
# Also: free_port (a free loopback TCP port) and secret (a random password).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret() { od -An -N9 -tx1 /dev/urandom | tr -d ' \n'; }
start_scale_cluster() {
  local size=$1 dir=$2 port=$3 conns dbs
  case "$size" in small) conns=5 ;; medium) conns=100 ;; large) conns=300 ;; *) conns=0 ;; esac
  bash "$root/bench/scale/setup.sh" "$size" "$dir" "$port"
  dbs=$("${as_pg[@]}" psql -h "$dir" -p "$port" -U postgres -d postgres -Atqc \
    "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE 'bench_%'")
  # shellcheck disable=SC2086
  "${as_pg[@]}" python3 "$root/bench/scale/hold_connections.py" "$dir" "$port" bench "$conns" $dbs \
    >"$dir/holder.log" 2>&1 &
  holder=$!
  for _ in $(seq 100); do grep -q holding "$dir/holder.log" 2>/dev/null && break; sleep 0.2; done
  grep -q holding "$dir/holder.log" || {
    echo "connection holder failed" >&2
    cat "$dir/holder.log" >&2
    return 2
  }
}
