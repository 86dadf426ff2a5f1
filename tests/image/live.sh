# shellcheck shell=bash
# Sourced by tests/image/test_image.sh and test_containerfile.sh: a pgvigil image run against a
# real PostgreSQL 15 on the host's loopback, the way a pod runs it.
#   live_pg_start    initdb + pg_ctl into a temp dir (as postgres when root), 127.0.0.1:random
#                    port, role vigil (pg_monitor) with a random password; 1 when it fails
#   live_run IMAGE   the image with --network=host --read-only --user 65532:65532, the shipped
#                    /etc/pgvigil/pgvigil.toml and the URL in PGVIGIL_DATABASE_URL: root
#                    filesystem read-only, /livez 200, /health 200 with the database up, /metrics
#                    with pg_up 1 and an ok probe, uid 65532 and VmRSS from the host's /proc,
#                    exit 0 on SIGTERM
#   live_cleanup     stops PostgreSQL, removes its directory (call from the EXIT trap)
# The caller defines pass, fail, info, podman_ (its podman), $work and the array containers.

live_pg_bin=/usr/lib/postgresql/15/bin
live_pg_dir=""
live_pg_data=""
live_pg_as=()

live_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

live_pg_start() {
  live_pg_dir="$(mktemp -d /tmp/pgvigil-image-pg.XXXXXX)"
  chmod 755 "${live_pg_dir}"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres:postgres "${live_pg_dir}"
    live_pg_as=(runuser -u postgres --)
  fi
  live_pg_port="$(live_free_port)"
  live_password="img-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  if "${live_pg_as[@]}" "${live_pg_bin}/initdb" -D "${live_pg_dir}/data" -U postgres -A trust \
       -E UTF8 --locale=C --no-sync >"${live_pg_dir}/initdb.log" 2>&1 &&
     "${live_pg_as[@]}" "${live_pg_bin}/pg_ctl" -D "${live_pg_dir}/data" -l "${live_pg_dir}/pg.log" \
       -w -t 60 -o "-c listen_addresses=127.0.0.1 -c port=${live_pg_port} \
-c unix_socket_directories=${live_pg_dir} -c fsync=off" start >/dev/null 2>&1; then
    live_pg_data="${live_pg_dir}/data"
  fi
  if [[ -n "${live_pg_data}" ]] &&
     "${live_pg_as[@]}" psql -X -q -v ON_ERROR_STOP=1 -h "${live_pg_dir}" -p "${live_pg_port}" \
       -U postgres -d postgres \
       -c "CREATE ROLE vigil LOGIN PASSWORD '${live_password}' IN ROLE pg_monitor" \
       >"${live_pg_dir}/psql.log" 2>&1; then
    live_db_url="postgresql://vigil:${live_password}@127.0.0.1:${live_pg_port}/postgres?sslmode=disable"
    pass "PostgreSQL 15 on 127.0.0.1:${live_pg_port}"
  else
    fail "PostgreSQL 15 started" "$(tail -3 "${live_pg_dir}"/*.log 2>/dev/null)"
    return 1
  fi
}

live_cleanup() {
  if [[ -n "${live_pg_data}" ]]; then
    "${live_pg_as[@]}" "${live_pg_bin}/pg_ctl" -D "${live_pg_data}" -m immediate -w stop \
      >/dev/null 2>&1
    live_pg_data=""
  fi
  [[ -n "${live_pg_dir}" ]] && rm -rf "${live_pg_dir}"
  live_pg_dir=""
}

live_run() {
  local image="$1" cid http_port code health state metrics pid uid rss_kb ro
  http_port="$(live_free_port)"
  if ! cid="$(podman_ run -d --network=host --read-only --user 65532:65532 \
        -e PGVIGIL_DATABASE_URL="${live_db_url}" "${image}" \
        --config /etc/pgvigil/pgvigil.toml --listen "127.0.0.1:${http_port}" 2>&1)"; then
    fail "container started" "${cid}"
    return 1
  fi
  containers+=("${cid}")
  ro="$(podman_ inspect --format '{{.HostConfig.ReadonlyRootfs}}' "${cid}" 2>&1)"
  if [[ "${ro}" == true ]]; then
    pass "root filesystem read-only"
  else
    fail "root filesystem read-only" "${ro}"
  fi

  live_get() {
    curl -s -o "${work}/body" -w '%{http_code}' --max-time 5 "http://127.0.0.1:${http_port}$1" \
      2>/dev/null
  }
  live_logs() { podman_ logs "${cid}" 2>&1 | tail -5 | sed -e "s/${live_password}/<password>/g"; }

  code=""
  for _ in $(seq 1 100); do
    code="$(live_get /livez)" && [[ "${code}" == 200 ]] && break
    sleep 0.1
  done
  if [[ "${code}" == 200 ]]; then
    pass "/livez 200"
  else
    fail "/livez 200" "got '${code}'; logs: $(live_logs)"
  fi

  health=""
  for _ in $(seq 1 150); do
    code="$(live_get /health)"
    health="$(cat "${work}/body" 2>/dev/null)"
    state="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["database"]["state"])' \
      <<<"${health}" 2>/dev/null)"
    [[ "${code}" == 200 && "${state}" == up ]] && break
    sleep 0.2
  done
  if [[ "${code}" == 200 && "${state}" == up ]]; then
    pass "/health 200, database up"
  else
    fail "/health 200, database up" "got ${code} ${health:0:300}; logs: $(live_logs)"
  fi
  if [[ "${health}" == *"${live_password}"* ]]; then
    fail "/health hides the password" "${health:0:300}"
  fi

  code="$(live_get /metrics)"
  metrics="$(cat "${work}/body" 2>/dev/null)"
  if [[ "${code}" == 200 ]] && grep -qx 'pg_up 1' <<<"${metrics}" &&
     grep -qE '^pgvigil_probes_total\{outcome="ok"\} [1-9]' <<<"${metrics}"; then
    pass "/metrics 200: pg_up 1, ok probes counted"
  else
    fail "/metrics 200 with pg_up 1" "got ${code}: $(grep -E '^(pg_up|pgvigil_probes_total)' \
      <<<"${metrics}" | head -5 | tr '\n' ' ')"
  fi

  pid="$(podman_ inspect --format '{{.State.Pid}}' "${cid}" 2>/dev/null)"
  if [[ -n "${pid}" && "${pid}" != 0 && -r "/proc/${pid}/status" ]]; then
    uid="$(awk '/^Uid:/ { print $2 }' "/proc/${pid}/status")"
    rss_kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/${pid}/status")"
    if [[ "${uid}" == 65532 ]]; then
      pass "the running pgvigil has uid 65532 (host /proc/${pid})"
    else
      fail "the running pgvigil has uid 65532" "uid '${uid}'"
    fi
    info "container RSS $(awk -v k="${rss_kb}" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
         "(VmRSS of pid ${pid}, after the checks above)"
  else
    fail "container pid seen from the host" "pid '${pid}'"
  fi

  podman_ stop -t 10 "${cid}" >/dev/null 2>&1
  code="$(podman_ inspect --format '{{.State.ExitCode}}' "${cid}" 2>/dev/null)"
  if [[ "${code}" == 0 ]]; then
    pass "pgvigil stops cleanly on SIGTERM"
  else
    fail "pgvigil stops cleanly on SIGTERM" "exit code ${code}; logs: $(live_logs)"
  fi
}
