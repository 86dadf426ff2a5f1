#!/usr/bin/env python3
"""Fleet acceptance test (issue 15), live on loopback, ~2 minutes (python3 stdlib only).

Starts a real PostgreSQL 15 (initdb in a temp dir, pg_stat_statements), three pgvigil processes
(PGVIGIL_BINARY) beside it, Debian's prometheus-postgres-exporter, pgbench at a known rate (-R) and
a real Prometheus (/usr/bin/prometheus, 1s scrapes, the chart's alert rules loaded) with three
jobs: pgvigil, postgres_exporter and prometheus itself. Then, through Prometheus' HTTP API:
  - the overview's transactions/s and connection panels agree with the database's own figures
    within 10 %;
  - the job variable lists only pgvigil's job, and no panel expression returns series for the
    exporter's or Prometheus' job (although they export pg_* and process_* series of the same
    names);
  - every dashboard expression returns data (the Neon row excepted: no Neon here);
  - one stats leader at a time; database statements per minute (pgvigil's role in
    pg_stat_statements, the per-pod probe statements left out: SELECT 1 and the followers'
    stats-lock tries that stood for a probe) with 3 sidecars within 1.2x of one sidecar's;
  - SIGKILL of the leader: another sidecar reports pgvigil_stats_leader 1 within two collector
    intervals;
  - PostgreSQL stopped: the pg_* database series vanish from every sidecar's /metrics within one
    collector interval (and from Prometheus), and PgvigilDatabaseDown goes pending.
Prints the measured figures, one line per failure and "N passed, M failed"; exits non-zero on
any failure. Everything started is stopped.
"""
import json
import os
import re
import signal
import sys
import time
import traceback
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_dashboards as td  # noqa: E402 - helpers shared with the dashboard checks

ROOT = td.ROOT
PG_BIN = td.PG_BIN
EXPORTER = "/usr/bin/prometheus-postgres-exporter"
CHART_RULES = os.path.join(ROOT, "helm", "pgvigil", "files", "alerts.yaml")
STATS_INTERVAL = 3.0  # [stats] interval of the sidecars, seconds
PGBENCH_RATE = 40     # transactions per second asked of pgbench
SIDECARS = 3
check = td.check


def figure(name, value):
    print(f"FIGURE {name}: {value}")


class Fleet(td.live_stack.LiveStack):
    """PostgreSQL with a pgbench database, sidecars, the exporter and Prometheus."""

    def __init__(self, binary):
        super().__init__("pgvigil-fleet-")
        self.binary = binary

    def start_postgres(self):
        super().start_postgres("pg_stat_statements.track = 'top'\n")
        self.psql("CREATE DATABASE bench")
        self.run_pg([f"{PG_BIN}/pgbench", "-i", "-q", "-s", "1", "-h", self.dir, "-p",
                     str(self.pg_port), "-U", "postgres", "bench"])

    def start_pgbench(self, seconds):
        # -R: a known, steady rate; -c 4 persistent sessions (a stable number of backends).
        self.spawn("pgbench", self.as_pg + [
            f"{PG_BIN}/pgbench", "-n", "-c", "4", "-j", "1", "-R", str(PGBENCH_RATE), "-T",
            str(seconds), "-S", "-h", self.dir, "-p", str(self.pg_port), "-U", "postgres",
            "bench"], dict(os.environ), "pgbench.log")

    def start_sidecar(self, i, port):
        toml = os.path.join(self.dir, f"pgvigil-{i}.toml")
        # Short timers; everything else on its defaults (stats.election = auto among them).
        with open(toml, "w") as f:
            f.write('[database]\nurl_env = "PGVIGIL_FLEET_URL"\n[http]\n'
                    f'listen = "127.0.0.1:{port}"\n'
                    '[pool]\nbackoff_max = "1s"\n'
                    '[probe]\ninterval = "1s"\ntimeout = "500ms"\n'
                    '[sampling]\nstatements_interval = "2s"\nactivity_interval = "2s"\n'
                    f'[stats]\ninterval = "{int(STATS_INTERVAL)}s"\n')
        env = dict(os.environ, PGVIGIL_FLEET_URL=self.vigil_url())
        self.spawn(f"pgvigil-{i}", [self.binary, "--config", toml], env, f"pgvigil-{i}.log")
        return port

    def start_exporter(self):
        self.exporter_port = td.free_port()
        # Over the Unix socket with trust auth: no password anywhere.
        env = dict(os.environ, DATA_SOURCE_NAME=(
            f"host={self.dir} port={self.pg_port} user=postgres dbname=postgres "
            "sslmode=disable"))
        self.spawn("exporter", self.as_pg + [
            EXPORTER, f"--web.listen-address=127.0.0.1:{self.exporter_port}"],
            env, "exporter.log")

    def start_prometheus(self, sidecar_ports):
        # Prometheus scrapes itself too: its own process_* series must stay out of the panels.
        port = td.free_port()
        super().start_prometheus(CHART_RULES, [
            ("pgvigil", [f"127.0.0.1:{p}" for p in sidecar_ports]),
            ("postgres_exporter", [f"127.0.0.1:{self.exporter_port}"]),
            ("prometheus", [f"127.0.0.1:{port}"])], port)

    def api(self, path):
        return json.loads(td.http_get(f"http://127.0.0.1:{self.prom_port}{path}"))


def metrics(port):
    try:
        return td.http_get(f"http://127.0.0.1:{port}/metrics")
    except OSError:
        return ""


def health(port):
    """/health's JSON (it answers 503 while the database is unavailable, with the same body)."""
    try:
        return json.loads(td.http_get(f"http://127.0.0.1:{port}/health"))
    except urllib.error.HTTPError as e:
        return json.loads(e.read().decode())


def value(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


def leaders(ports):
    return [p for p in ports if value(metrics(p), "pgvigil_stats_leader") == 1]


def vigil_statements(fleet):
    """Statements pgvigil's role ran since the last reset: (all, without SELECT 1, the
    followers' tries of the stats lock)."""
    row = fleet.psql(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(calls) FILTER (WHERE query NOT LIKE "
        "'/* pgvigil */ SELECT $1%'), 0), coalesce(sum(calls) FILTER (WHERE query LIKE "
        "'/* pgvigil */ SELECT pg_backend_pid() = %'), 0) FROM pg_stat_statements "
        "WHERE userid = 'vigil'::regrole")
    total, without_probe, tries = row.split("|")
    return float(total), float(without_probe), float(tries)


def by_traffic(ports):
    return sum(value(metrics(p), "pgvigil_probes_by_traffic_total") or 0 for p in ports)


def statements_per_minute(fleet, seconds, followers=()):
    """Per minute: (all statements, without SELECT 1, the followers' lock tries, the followers'
    probes a try stood for: a follower runs no job, so its probes by traffic are its tries)."""
    fleet.psql("SELECT pg_stat_statements_reset()")
    traffic0 = by_traffic(followers)
    start = time.time()
    time.sleep(seconds)
    total, work, tries = vigil_statements(fleet)
    tries_as_probes = by_traffic(followers) - traffic0
    minutes = (time.time() - start) / 60
    breakdown = fleet.psql(
        "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_statements "
        "WHERE userid = 'vigil'::regrole ORDER BY calls DESC LIMIT 8")
    figure(f"pgvigil's statements in {seconds}s (calls | query)", "\n" + breakdown)
    return total / minutes, work / minutes, tries / minutes, tries_as_probes / minutes


def series_results(res):
    return res.get("data", {}).get("result", []) if res.get("status") == "success" else []


def scalar_of(res, pick=None):
    for s in series_results(res):
        if pick is None or pick(s["metric"]):
            return float(s["value"][1])
    return None


def panel_target(dashboard, title, ref="A"):
    for p in panels_of(dashboard):
        if p.get("title") == title:
            for t in p.get("targets", []):
                if t.get("refId") == ref:
                    return t["expr"]
    raise KeyError(f"panel {title!r} target {ref} not found")


def panels_of(dashboard):
    def walk(ps):
        for p in ps:
            yield p
            yield from walk(p.get("panels", []))
    return list(walk(dashboard.get("panels", [])))


def neon_panels(dashboard):
    """Titles of the panels in a Neon row (data only on Neon)."""
    out, in_neon = set(), False
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            in_neon = p.get("title") == "Neon"
            continue
        if in_neon:
            out.add(p.get("title"))
    return out


def within(measured, truth, ratio=0.10):
    return truth is not None and measured is not None and abs(measured - truth) <= ratio * truth


def run(binary):
    dashboards = td.load_dashboards()
    overview = dashboards["pgvigil-overview.json"]
    fleet = Fleet(binary)
    t_start = time.time()
    try:
        fleet.start_postgres()
        fleet.start_pgbench(210)
        fleet.start_exporter()
        # All ports now, so Prometheus knows the three targets from the start.
        ports = [td.free_port()]
        later_ports = [td.free_port() for _ in range(SIDECARS - 1)]
        fleet.start_sidecar(0, ports[0])
        fleet.start_prometheus(ports + later_ports)
        ok = td.wait_for(lambda: leaders(ports) == ports, 30)
        if not check(ok, "the first sidecar did not become stats leader within 30s\n"
                     + fleet.log("pgvigil-0.log")):
            return
        # /metrics' gauge moves the moment the lock is taken; /health shows the snapshot published
        # at the end of that scheduler turn (its first collectors' run, seconds under load).
        td.wait_for(lambda: health(ports[0])["stats_leader"]["role"] == "leader", 15)
        h = health(ports[0])["stats_leader"]
        check(h["role"] == "leader" and h["election"] == "auto",
              f"/health stats_leader of the only sidecar: {h}")

        # Statements per minute with one sidecar, then with three.
        one_total, one_work, _, _ = statements_per_minute(fleet, 40)
        for i, port in enumerate(later_ports, start=1):
            fleet.start_sidecar(i, port)
        ports += later_ports
        ok = td.wait_for(lambda: all(health(p)["stats_leader"]["role"] == "follower"
                                     for p in later_ports), 20)
        check(ok, "the new sidecars did not become followers: "
              + str([health(p).get("stats_leader") for p in later_ports]))
        check(leaders(ports) == ports[:1], f"one leader expected, got {leaders(ports)}")
        three_total, three_work, three_tries, tries_as_probes = statements_per_minute(
            fleet, 40, later_ports)
        # A follower's lock try runs ahead of a probe and stands for its SELECT 1
        # (pgvigil_probes_by_traffic_total): a probe statement like SELECT 1. A try that did not
        # stand for a probe (failed, or run in a window after the probe) counts as work.
        three_work -= tries_as_probes
        tries_pace = len(later_ports) * 60 / (1.5 * STATS_INTERVAL)
        figure("statements/min one sidecar (all, without probe statements)",
               f"{one_total:.0f}, {one_work:.0f}")
        figure("statements/min three sidecars (all, without probe statements)",
               f"{three_total:.0f}, {three_work:.0f}")
        figure("followers' lock tries/min, of which stood for a probe (designed pace)",
               f"{three_tries:.0f}, {tries_as_probes:.0f} ({tries_pace:.0f})")
        figure("ratio three/one without probe statements", f"{three_work / max(one_work, 1):.2f}")
        figure("ratio three/one with probes", f"{three_total / max(one_total, 1):.2f}")
        check(three_work <= 1.2 * one_work,
              f"database statements/min with 3 sidecars, probe statements left out, "
              f"{three_work:.0f} > 1.2 x one sidecar's {one_work:.0f}")
        for p in later_ports:
            text = metrics(p)
            check("pg_stat_database_xact_commit{" not in text,
                  f"follower :{p} exports pg_stat_database series")
            check(value(text, "pgvigil_stats_leader") == 0, f"follower :{p} is not 0")

        # The overview's panels against the database's own figures.
        jobs = fleet.api("/api/v1/label/job/values?match[]=pgvigil_build_info")["data"]
        check(jobs == ["pgvigil"], f"the job variable would list {jobs}, expected ['pgvigil']")
        job_all = "|".join(re.escape(j) for j in jobs)
        # rate() over the window sees the counters as the leader last collected them (every
        # STATS_INTERVAL, later when a window between probes defers the run): over 30 s that
        # alone can be 10 % off (seen in CI: 43.2 vs 39.1), over 60 s it stays within 5 %.
        window = 60

        def promql(expr):
            return td.grafana_to_promql(expr, job_all).replace("[1m]", f"[{window}s]")
        c0 = float(fleet.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'"))
        t0 = time.time()
        time.sleep(window)
        c1 = float(fleet.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'"))
        t1 = time.time()
        backends_db = float(fleet.psql("SELECT sum(numbackends) - 1 FROM pg_stat_database"))
        truth_tps = (c1 - c0) / (t1 - t0)
        panel_tps = scalar_of(fleet.query(promql(panel_target(overview, "Transactions", "A")),
                                          at=t1), lambda m: m.get("datname") == "bench")
        panel_backends = scalar_of(fleet.query(promql(
            panel_target(overview, "Connections vs max_connections", "A"))))
        figure("tx/s database (pg_stat_database.xact_commit, bench)", f"{truth_tps:.2f}")
        figure("tx/s overview panel 'Transactions'", panel_tps)
        figure("backends database (sum numbackends, this session left out)", backends_db)
        figure("backends overview panel 'Connections vs max_connections'", panel_backends)
        check(within(panel_tps, truth_tps),
              f"Transactions panel {panel_tps} vs database {truth_tps:.2f} tx/s: off by > 10 %")
        check(within(panel_backends, backends_db),
              f"Connections panel {panel_backends} vs database {backends_db}: off by > 10 %")
        # The same names from the exporter would have multiplied the figures; make sure they
        # are there, so the scoping check below means something.
        check(series_results(fleet.query('pg_stat_database_xact_commit{job="postgres_exporter"}')),
              "postgres_exporter exports no pg_stat_database_xact_commit (the check is void)")
        check(series_results(fleet.query('process_cpu_seconds_total{job="prometheus"}')),
              "Prometheus exports no process_cpu_seconds_total (the check is void)")

        # Every expression, with the job variable's "All": data (Neon row excepted), and no
        # series of the exporter's or Prometheus' job (by job or instance label) nor from their
        # raw series: the same expression over only the other jobs' series returns nothing.
        foreign = {f"127.0.0.1:{fleet.exporter_port}", f"127.0.0.1:{fleet.prom_port}"}
        missing = []
        for name, d in dashboards.items():
            skip = neon_panels(d)
            for p in panels_of(d):
                for t in p.get("targets", []):
                    expr = t["expr"]
                    where = f"{name}: {p['title']} ({t['refId']})"
                    res = fleet.query(promql(expr))
                    check(res.get("status") == "success", f"{where}: {res.get('error')}")
                    for sr in series_results(res):
                        m = sr["metric"]
                        check(m.get("job", "pgvigil") in jobs and m.get("instance") not in foreign,
                              f"{where} returns a series of another job: {m}")
                    # The selectors with the All value never match other jobs' series.
                    for sel in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\{[^{}]*\}", expr):
                        raw = td.grafana_to_promql(sel, job_all)
                        other = fleet.query(f"count by (job) ({raw}) unless on (job) "
                                            f"count by (job) (pgvigil_build_info)")
                        check(not series_results(other),
                              f"{where}: selector {sel} matches {series_results(other)}")
                    if p.get("title") not in skip and not series_results(res):
                        missing.append(where)
        check(not missing, "expressions without data under the default config:\n  "
              + "\n  ".join(missing))

        # Kill the leader: another takes over within two collector intervals.
        leader = leaders(ports)
        check(len(leader) == 1, f"exactly one leader expected, got {leader}")
        idx = ports.index(leader[0])
        killed_at = time.time()
        fleet.procs[f"pgvigil-{idx}"].send_signal(signal.SIGKILL)
        survivors = [p for p in ports if p != leader[0]]
        took_over = td.wait_for(lambda: len(leaders(survivors)) == 1, 4 * STATS_INTERVAL,
                                step=0.1)
        handover = time.time() - killed_at
        figure("leader hand-over after SIGKILL (s)", f"{handover:.2f} "
               f"(bound {2 * STATS_INTERVAL:.0f}s = two collector intervals)")
        check(took_over and handover <= 2 * STATS_INTERVAL,
              f"no other sidecar reported pgvigil_stats_leader 1 within "
              f"{2 * STATS_INTERVAL}s (took {handover:.1f}s)")
        check(len(leaders(survivors)) == 1, f"one leader after the hand-over: {leaders(survivors)}")
        new_leader = leaders(survivors)[0] if leaders(survivors) else survivors[0]
        td.wait_for(lambda: "pg_stat_database_xact_commit{" in metrics(new_leader),
                    2 * STATS_INTERVAL)
        check("pg_stat_database_xact_commit{" in metrics(new_leader),
              "the new leader exports no pg_stat_database series")

        # PostgreSQL stopped: the pg_* series vanish; the database-down alert goes pending.
        fleet.procs["pgbench"].send_signal(signal.SIGTERM)
        stopped_at = time.time()  # from the start of pg_ctl stop (fast: sessions end at once)
        fleet.stop_postgres()
        figure("pg_ctl stop -m fast took (s)", f"{time.time() - stopped_at:.2f}")
        gone = td.wait_for(lambda: all("pg_stat_database_" not in metrics(p).replace(
            "# HELP pg_stat_database_", "").replace("# TYPE pg_stat_database_", "")
            for p in survivors), 3 * STATS_INTERVAL, step=0.1)
        vanish = time.time() - stopped_at
        figure("pg_* series gone from /metrics after PostgreSQL stopped (s)",
               f"{vanish:.2f} (bound {STATS_INTERVAL:.0f}s = one collector interval)")
        check(gone and vanish <= STATS_INTERVAL,
              f"pg_* series still exported {vanish:.1f}s after PostgreSQL stopped")
        for p in survivors:
            text = metrics(p)
            for fam in ("pg_stat_activity_count{", "pg_locks_count{", "pg_database_size_bytes{",
                        "pg_settings_max_connections ", "pg_static{"):
                check(fam not in text, f":{p} still exports {fam}")
            check(value(text, "pg_up") == 0, f":{p} pg_up should read 0 while down")
        prom_gone = td.wait_for(lambda: not series_results(fleet.query(
            'pg_stat_database_numbackends{job="pgvigil"}')), 10, step=0.2)
        check(prom_gone, "Prometheus still returns pgvigil's pg_stat_database_numbackends")

        def down_pending():
            alerts = fleet.api("/api/v1/alerts")["data"]["alerts"]
            return any(a["labels"].get("alertname") == "PgvigilDatabaseDown" and
                       a["state"] in ("pending", "firing") for a in alerts)
        pending = td.wait_for(down_pending, 20, step=0.5)
        figure("PgvigilDatabaseDown pending after PostgreSQL stopped (s)",
               f"{time.time() - stopped_at:.1f}")
        check(pending, "PgvigilDatabaseDown did not go pending in Prometheus")
        h = health(survivors[0])["stats_leader"]
        check(h["role"] == "none" and h["collects"] is False,
              f"/health stats_leader while the database is down: {h}")

        # PostgreSQL back: one leader again, its pg_* series back as new series; rate() over the
        # gap stays sane (no spike from the series' return).
        fleet.start_pg_ctl()
        restarted_at = time.time()
        back = td.wait_for(lambda: len(leaders(survivors)) == 1 and any(
            "pg_stat_database_xact_commit{" in metrics(p) for p in survivors), 20, step=0.2)
        figure("pg_* series back after PostgreSQL restarted (s)", f"{time.time() - restarted_at:.1f}")
        check(back, f"after the restart: leaders {leaders(survivors)}, no pg_* series back")
        time.sleep(3)
        tps = scalar_of(fleet.query(promql(panel_target(overview, "Transactions", "A"))),
                        lambda m: m.get("datname") == "bench")
        figure("tx/s panel for bench after the restart (pgbench stopped)", tps)
        check(tps is not None and 0 <= tps <= 2 * PGBENCH_RATE,
              f"Transactions panel after the restart reads {tps}")
    finally:
        figure("test duration (s)", f"{time.time() - t_start:.0f}")
        fleet.close()


def main():
    binary = os.environ.get("PGVIGIL_BINARY", "")
    if not check(os.access(binary, os.X_OK), f"PGVIGIL_BINARY={binary!r} is not executable"):
        return 1
    for tool in (EXPORTER, "/usr/bin/prometheus", f"{PG_BIN}/pgbench"):
        if not check(os.access(tool, os.X_OK), f"{tool} missing (scripts/install-deps.sh test)"):
            return 1
    run(binary)
    print(f"{td.results['passed']} passed, {td.results['failed']} failed")
    return 0 if td.results["failed"] == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - a crash is a failure, with its trace
        traceback.print_exc()
        print(f"{td.results['passed']} passed, {td.results['failed'] + 1} failed")
        sys.exit(1)
