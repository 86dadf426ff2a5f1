#!/usr/bin/env python3
"""Side-by-side measurements of pgvigil and prometheus-postgres-exporter (stdlib only).

Started by bench/run.sh once a throwaway PostgreSQL 15 is up; this script starts both tools itself
(so it can time their start-up), measures each the same way, stops them, prints a Markdown table
with PASS/FAIL per target from issue 8 and optionally rewrites docs/benchmarks.md.
Every process it starts is recorded in <work>/pids and stopped on exit (also on SIGTERM/SIGINT).
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def pss_mib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def library_floor_mib(binary, work):
    """VmRSS of a program that does nothing but load the shared libraries `binary` links (same
    NEEDED list, same order), or NaN without readelf or a C compiler. Static binaries: NaN."""
    try:
        dyn = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return float("nan")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    if not needed:
        return float("nan")
    src, exe = os.path.join(work, "floor.c"), os.path.join(work, "floor")
    with open(src, "w") as f:
        f.write("#include <unistd.h>\nint main(void) { pause(); return 0; }\n")
    cmd = ["cc", "-O2", "-o", exe, src, "-Wl,--no-as-needed"] + [f"-l:{lib}" for lib in needed]
    try:
        subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return float("nan")
    proc = subprocess.Popen([exe])
    try:
        time.sleep(0.5)
        return rss_mib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: fields[0] is state (field 3), so utime (14) and stime (15) are 11, 12.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def quantile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[idx]


class Postgres:
    """Runs SQL as the superuser over the unix socket (psql, as the postgres OS user when root)."""

    def __init__(self, socket_dir, port):
        self.base = ["psql", "-h", socket_dir, "-p", str(port), "-U", "postgres", "-d", "postgres",
                     "-Atq", "-v", "ON_ERROR_STOP=1", "-F", "\t"]
        if os.geteuid() == 0:
            self.base = ["runuser", "-u", "postgres", "--"] + self.base

    def rows(self, sql):
        out = subprocess.run(self.base + ["-c", sql], check=True, capture_output=True, text=True)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def calls_by_role(self, roles):
        names = ",".join(f"'{r}'" for r in roles)
        got = {r: 0 for r in roles}
        for name, calls in self.rows(
                "SELECT r.rolname, coalesce(sum(s.calls), 0) FROM pg_stat_statements s "
                f"JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname IN ({names}) GROUP BY 1"):
            got[name] = int(calls)
        return got

    def held_by_role(self, roles):
        names = ",".join(f"'{r}'" for r in roles)
        got = {r: 0 for r in roles}
        for name, n in self.rows("SELECT usename, count(*) FROM pg_stat_activity "
                                 f"WHERE usename IN ({names}) GROUP BY 1"):
            got[name] = int(n)
        return got


def connections_opened(log_path, roles):
    got = {r: 0 for r in roles}
    pattern = re.compile(r"connection authorized: user=(\S+)")
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                m = pattern.search(line)
                if m and m.group(1) in got:
                    got[m.group(1)] += 1
    except OSError:
        pass
    return got


class Tool:
    def __init__(self, name, role, argv, env, port, log_path, ready_path, probe_ok):
        self.name, self.role, self.argv, self.env = name, role, argv, env
        self.port, self.log_path = port, log_path
        self.ready_path, self.probe_ok = ready_path, probe_ok
        self.proc = None
        self.last = b""
        self.m = {}

    @property
    def pid(self):
        return self.proc.pid

    def start(self, pids_file, timeout=30.0):
        log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        with open(pids_file, "a") as f:
            f.write(f"{self.proc.pid}\n")
        ready = probe = None
        deadline = t0 + timeout
        while time.perf_counter() < deadline and (ready is None or probe is None):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if ready is None:
                    status, _ = http_get(self.port, self.ready_path, timeout=1.0)
                    if status == 200:
                        ready = time.perf_counter() - t0
                if ready is not None and probe is None and self.probe_ok():
                    probe = time.perf_counter() - t0
            except OSError:
                pass
            if ready is None or probe is None:
                time.sleep(0.005)
        if ready is None or probe is None:
            raise RuntimeError(f"{self.name} not ready/probing after {timeout}s (ready: {ready}, "
                               f"last answer: {self.last!r}); see {self.log_path}")
        self.m["ready_ms"] = ready * 1000
        self.m["probe_ms"] = probe * 1000

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def scrape_loop(tool, n):
    """n sequential /metrics GETs on one keep-alive connection, as a steady scraper would."""
    conn = http.client.HTTPConnection("127.0.0.1", tool.port, timeout=30)
    lat = []
    size = 0
    try:
        for _ in range(n):
            t = time.perf_counter()
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            body = resp.read()
            lat.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"{tool.name} /metrics returned {resp.status}")
            size = len(body)
    finally:
        conn.close()
    lat.sort()
    return lat, size


def parse_wrk(text):
    def to_ms(value, unit):
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    sock = re.search(r"Socket errors:.*", text)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p99_ms": to_ms(*p99.groups()) if p99 else float("nan"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(0) if sock else "",
    }


def run_wrk(port, path, seconds):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=seconds + 30)
    return parse_wrk(out.stdout)


def fmt(v, digits=2):
    if isinstance(v, str):
        return v
    if v != v:  # NaN
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if isinstance(a, str) or isinstance(b, str) or a != a or b != b:
        return "n/a"
    if b == 0:
        return "—" if a == 0 else "∞"
    return f"{a / b:.2f}×"


def machine_info(args):
    def first(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout.strip() or out.stderr.strip()).splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unknown"

    cpu = "unknown"
    mem = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "pgvigil": first([args.pgvigil, "--version"]),
        "exporter": first([args.exporter, "--version"]),
        "postgres": first([os.path.join(args.pgbin, "postgres"), "--version"]),
        "wrk": first(["wrk", "--version"]) or "wrk",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--pg-socket-dir", required=True)
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--pg-log", required=True)
    ap.add_argument("--pgbin", default="/usr/lib/postgresql/15/bin")
    ap.add_argument("--pgvigil", required=True)
    ap.add_argument("--exporter", default="prometheus-postgres-exporter")
    ap.add_argument("--vigil-url", required=True)
    ap.add_argument("--exporter-url", required=True)
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=60)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--docs", default="", help="write the table into this Markdown file")
    args = ap.parse_args()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    pg = Postgres(args.pg_socket_dir, args.pg_port)
    pids_file = os.path.join(args.work, "pids")
    vigil_port, exp_port = free_port(), free_port()
    config = os.path.join(args.work, "pgvigil.toml")
    with open(config, "w") as f:
        f.write(f'[http]\nlisten = "127.0.0.1:{vigil_port}"\n')
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "PGVIGIL_DATABASE_URL", "DATA_SOURCE_NAME")}

    def vigil_up():
        status, body = http_get(vigil_port, "/health", timeout=1.0)
        vigil.last = body[:600]
        return status == 200 and json.loads(body).get("database", {}).get("state") == "up"

    def exporter_up():
        status, body = http_get(exp_port, "/metrics", timeout=5.0)
        return status == 200 and re.search(rb"^pg_up 1$", body, re.M) is not None

    vigil = Tool("pgvigil", "vigil", [args.pgvigil, "--config", config],
                 dict(base_env, PGVIGIL_DATABASE_URL=args.vigil_url), vigil_port,
                 os.path.join(args.work, "pgvigil.log"), "/readyz", vigil_up)
    exporter = Tool("exporter", "exporter",
                    [args.exporter, f"--web.listen-address=127.0.0.1:{exp_port}"],
                    dict(base_env, DATA_SOURCE_NAME=args.exporter_url), exp_port,
                    os.path.join(args.work, "exporter.log"), "/metrics", exporter_up)
    tools = [vigil, exporter]
    roles = [t.role for t in tools]
    try:
        return measure(args, pg, pids_file, tools, roles)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        print(f"bench: {err}", file=sys.stderr)
        for t in tools:
            try:
                with open(t.log_path, errors="replace") as f:
                    tail = f.readlines()[-15:]
                print(f"--- {t.log_path} (last lines)\n" + "".join(tail), file=sys.stderr)
            except OSError:
                pass
        return 2
    finally:
        for t in tools:
            t.stop()


def measure(args, pg, pids_file, tools, roles):
    vigil, exporter = tools
    t_run = time.monotonic()
    for t in tools:
        print(f"bench: starting {t.name}", file=sys.stderr)
        t.start(pids_file)

    # Warm-up: a few scrapes each, then let the first collector ticks settle.
    for t in tools:
        scrape_loop(t, 10)
    time.sleep(2)
    for t in tools:
        t.m["rss_warm"] = rss_mib(t.pid)

    # Idle window: nobody scrapes; the tools do only what their own timers do.
    print(f"bench: idle window {args.idle_seconds:.0f}s", file=sys.stderr)
    calls0 = pg.calls_by_role(roles)
    opened0 = connections_opened(args.pg_log, roles)
    cpu0 = {t.name: cpu_seconds(t.pid) for t in tools}
    t0 = time.monotonic()
    time.sleep(args.idle_seconds)
    idle = time.monotonic() - t0
    calls1 = pg.calls_by_role(roles)
    opened1 = connections_opened(args.pg_log, roles)
    held = pg.held_by_role(roles)
    for t in tools:
        t.m["idle_cpu_pct"] = (cpu_seconds(t.pid) - cpu0[t.name]) / idle * 100
        t.m["idle_calls_per_min"] = (calls1[t.role] - calls0[t.role]) / idle * 60
        t.m["opened_per_hour_idle"] = (opened1[t.role] - opened0[t.role]) / idle * 3600
        t.m["held"] = held[t.role]

    # Steady scrape loop, one tool at a time so they do not compete for the two cores.
    for t in tools:
        print(f"bench: {args.scrapes} scrapes of {t.name}", file=sys.stderr)
        c0, cpu_a, s0 = pg.calls_by_role(roles)[t.role], cpu_seconds(t.pid), time.monotonic()
        lat, size = scrape_loop(t, args.scrapes)
        dur = time.monotonic() - s0
        cpu_b = cpu_seconds(t.pid)
        c1 = pg.calls_by_role(roles)[t.role]
        t.m["held"] = max(t.m["held"], pg.held_by_role(roles)[t.role])
        t.m["rss_scraped"] = rss_mib(t.pid)
        t.m["rss_anon"] = rss_mib(t.pid, "RssAnon")
        t.m["pss"] = pss_mib(t.pid)
        t.m["rss_floor"] = library_floor_mib(shutil.which(t.argv[0]) or t.argv[0], args.work)
        t.m["rss_own"] = t.m["rss_scraped"] - t.m["rss_floor"]
        t.m["threads"] = rss_mib(t.pid, "Threads") * 1024
        t.m["p50_ms"] = quantile(lat, 0.50)
        t.m["p99_ms"] = quantile(lat, 0.99)
        t.m["body_kib"] = size / 1024
        t.m["cpu_per_1000"] = (cpu_b - cpu_a) * 1000 / args.scrapes
        background = t.m["idle_calls_per_min"] / 60 * dur
        t.m["calls_per_scrape"] = max(0.0, (c1 - c0 - background) / args.scrapes)
        t.m["calls_per_scrape_raw"] = (c1 - c0) / args.scrapes
        # A Prometheus scraping every 15 s, plus what the tool does on its own.
        t.m["calls_per_min_15s"] = t.m["idle_calls_per_min"] + 4 * t.m["calls_per_scrape"]

    # Probe endpoint throughput. The exporter has no /livez; its landing page "/" is the closest
    # cheap endpoint that does not touch the database.
    for t, path in ((vigil, "/livez"), (exporter, "/")):
        print(f"bench: wrk {path} on {t.name}", file=sys.stderr)
        w = run_wrk(t.port, path, args.wrk_seconds)
        t.m["livez_rps"], t.m["livez_p99_ms"] = w["rps"], w["p99_ms"]
        t.m["livez_non2xx"], t.m["livez_sock"] = w["non2xx"], w["socket_errors"]
    breakdown = []
    for t in tools:
        for calls, query in pg.rows(
                "SELECT s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90) "
                "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                f"WHERE r.rolname = '{t.role}' ORDER BY s.calls DESC LIMIT 6"):
            breakdown.append(f"- {t.name}: {calls} × `{query}`")
    opened_end = connections_opened(args.pg_log, roles)
    for t in tools:
        t.m["opened_total"] = opened_end[t.role]
    run_seconds = time.monotonic() - t_run

    rows = [
        ("Start-up to ready, ms (pgvigil /readyz 200; exporter first /metrics 200)", "ready_ms", 0),
        ("Start-up to first successful probe, ms (/health up; exporter pg_up 1)", "probe_ms", 0),
        ("RSS after warm-up, MiB", "rss_warm", 1),
        (f"RSS after {args.scrapes:,} scrapes, MiB", "rss_scraped", 1),
        ("… of which anonymous (heap, stacks), MiB", "rss_anon", 1),
        ("PSS after the scrapes (shared pages split among the processes that map them), MiB",
         "pss", 1),
        ("RSS of an empty program linked to the same shared libraries, MiB", "rss_floor", 1),
        ("RSS above that floor, MiB", "rss_own", 1),
        ("Threads", "threads", 0),
        ("/metrics latency p50, ms", "p50_ms", 2),
        ("/metrics latency p99, ms", "p99_ms", 2),
        ("/metrics response size, KiB", "body_kib", 1),
        ("CPU seconds per 1,000 scrapes", "cpu_per_1000", 3),
        ("Idle CPU, % of one core (default intervals, no scrapes)", "idle_cpu_pct", 3),
        ("DB statements per scrape", "calls_per_scrape", 3),
        ("DB statements per minute, idle (no scrapes)", "idle_calls_per_min", 1),
        ("DB statements per minute, scraped every 15 s", "calls_per_min_15s", 1),
        ("DB connections held (max seen)", "held", 0),
        (f"DB connections opened during the run ({run_seconds:.0f} s)", "opened_total", 0),
        ("DB connections opened per hour, idle rate", "opened_per_hour_idle", 0),
        ("/livez req/s, wrk -t2 -c32 (exporter: /)", "livez_rps", 0),
        ("/livez p99, ms (exporter: /)", "livez_p99_ms", 2),
    ]
    lines = ["| metric | pgvigil | exporter | ratio |", "|---|---:|---:|---:|"]
    for label, key, digits in rows:
        a, b = vigil.m[key], exporter.m[key]
        lines.append(f"| {label} | {fmt(a, digits)} | {fmt(b, digits)} | {ratio(a, b)} |")
    table = "\n".join(lines)

    v, e = vigil.m, exporter.m
    targets = [
        (f"RSS ≤ 8 MiB (after {args.scrapes:,} scrapes: {v['rss_scraped']:.1f} MiB)",
         v["rss_scraped"] <= 8.0),
        (f"RSS ≤ 0.5× exporter ({v['rss_scraped'] / e['rss_scraped']:.2f}×)",
         v["rss_scraped"] <= 0.5 * e["rss_scraped"]),
        (f"/metrics p99 ≤ 0.5× exporter ({v['p99_ms'] / e['p99_ms']:.2f}×)",
         v["p99_ms"] <= 0.5 * e["p99_ms"]),
        (f"/metrics p99 < 5 ms ({v['p99_ms']:.2f} ms)", v["p99_ms"] < 5.0),
        (f"0 DB statements per scrape ({v['calls_per_scrape']:.3f}; raw "
         f"{v['calls_per_scrape_raw']:.3f} incl. background)", v["calls_per_scrape"] < 0.005),
        (f"Idle CPU < 0.2% of a core ({v['idle_cpu_pct']:.3f}%)", v["idle_cpu_pct"] < 0.2),
        (f"/livez ≥ 10,000 req/s ({v['livez_rps']:,.0f} req/s on {os.cpu_count()} CPUs)",
         v["livez_rps"] >= 10000),
    ]
    verdict = "\n".join(f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in targets)
    if v["rss_floor"] > 8.0:
        verdict += (f"\n- Note: the shared libraries pgvigil links (Debian's libpq, cpp-httplib, "
                    f"prometheus-cpp, libstdc++ and what they pull in) already take "
                    f"{v['rss_floor']:.1f} MiB in an empty program; see \"Memory\" below.")
    notes = []
    for t in tools:
        if t.m["livez_non2xx"] or t.m["livez_sock"]:
            notes.append(f"- {t.name} wrk: {t.m['livez_non2xx']} non-2xx; {t.m['livez_sock']}")
    print(table)
    print()
    print(verdict)
    if notes:
        print("\n".join(notes))
    print("\nMost frequent statements per role over the whole run:")
    print("\n".join(breakdown))
    notes.append("\nMost frequent statements per role over the whole run (start-up and warm-up "
                 "included):\n")
    notes.extend(breakdown)

    if args.docs:
        write_docs(args, machine_info(args), table, verdict, notes, run_seconds)
    return 0 if all(ok for _, ok in targets) else 1


def write_docs(args, info, table, verdict, notes, run_seconds):
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"""# Benchmarks: pgvigil vs prometheus-postgres-exporter

pgvigil's claim is "smaller, faster and gentler on the database than what you run today". This
page holds the latest numbers from `bench/run.sh`, which runs both tools side by side against the
same throwaway PostgreSQL 15 and measures each the same way. Ratios are pgvigil ÷ exporter
(lower is better except for req/s). Absolute numbers depend on the machine; the ratios and the
targets from issue 8 should hold anywhere.

## Latest run

{when}, {run_seconds:.0f} s of measurement. Machine:

- CPUs: {info['cpus']} × {info['cpu']}
- Memory: {info['memory']}
- Kernel: {info['kernel']}
- {info['pgvigil']} (Release build, default config: probe every 10 s, sampling on)
- {info['exporter']} (Debian package, default collectors)
- {info['postgres']} with pg_stat_statements
- {info['wrk']}

{table}

Targets (issue 8):

{verdict}
{chr(10).join(notes)}

## Memory: why RSS stays above 8 MiB

The two RSS targets of issue 8 (≤ 8 MiB, ≤ 0.5× the exporter) are below what the libraries
pgvigil must use cost by themselves. Measured on the machine above with empty programs (a
`pause()` `main`) linked against one library each, 2026-11-23:

| linked library (Debian 12 package) | VmRSS of the empty program, MiB | pulls in |
|---|---:|---|
| none (libc only) | 1.1 | — |
| `libssl.so.3` + `libcrypto.so.3` | 3.0 | — |
| `libprometheus-cpp-core.so.1.0` | 2.7 | libstdc++ |
| `libpq.so.5` | 6.7 | libssl/libcrypto 3, GSSAPI/Kerberos, OpenLDAP → GnuTLS, p11-kit |
| `libcpp-httplib.so.0.11` | 7.3 | libssl/libcrypto 3, libstdc++, brotli, zlib |
| all of pgvigil's `NEEDED` list | 11.0 | (the "empty program" row in the table) |

libssl and libcrypto add 1.9 MiB as soon as they are mapped, before anything calls them (the
dynamic loader reads their symbol and relocation tables and writes their relocated data);
libcrypto grows to ~3.4 MiB once SCRAM authentication or TLS has run. So an 8 MiB target, or
0.5 × the exporter's ~17 MiB, is out of reach before pgvigil runs a line of its own code.
pgvigil's own share — code, heap, thread stacks, the library pages it touches while running —
is the "RSS above that floor" row: about a quarter of the exporter's.

What pgvigil does about the part it controls: glibc malloc arenas are capped at two
(`M_ARENA_MAX`; `MALLOC_ARENA_MAX` in the environment still wins), which took ~1.1 MiB off the idle
RSS and ~3.5 MiB off the RSS under concurrent scrapes; HTTP workers are an elastic pool that
shrinks back when idle; every buffer and sample table is bounded. Tried and dropped: toml++ in
header-only mode (one library less, same RSS: the parser's pages move into the binary).

What it would take to go lower: a static build. Debian ships `libpq.a`, `libssl.a` and
`libcrypto.a`, but cpp-httplib and prometheus-cpp only as shared libraries (which load libssl,
libcrypto and libstdc++ themselves), and `libpq.a` needs `libgssapi_krb5` and `libldap`, which
Debian ships only as shared libraries. Getting under 8 MiB therefore means building those
libraries from source, outside this project's "everything from Debian packages" rule. PSS is the
fairer figure where the same image runs many times on a node: the kernel keeps one copy of
each library's clean pages.

## Statement history memory (/queries)

`bench/history_ring.sh` (issue 14) fills the `/queries` history ring with 5,000 distinct
statements, every one of them active in every 1-minute window (the worst case: a statement only
takes a row in the windows where its calls grew), and prints the heap it holds (glibc
`mallinfo2`, mmap()ed blocks included) and the time one default `/queries` (15 minutes) takes to
aggregate it. Measured 2026-11-28 on this machine (RelWithDebInfo build):

| statements | windows (1 min) | text bytes | rows | heap MiB | bytes/row | /queries 15m aggregate ms |
|---|---|---|---|---|---|---|
| 5000 | 15 | 200 | 75000 | 8.0 | 112 | 14.8 |
| 5000 | 60 | 200 | 300000 | 25.2 | 88 | 5.8 |
| 5000 | 15 | 2048 | 75000 | 16.8 | 235 | 20.5 |
| 5000 | 60 | 2048 | 300000 | 34.0 | 119 | 29.0 |

So the default `sampling.history = "1h"` at `statements_interval = "1m"` costs at most about
25 MiB with typical obfuscated texts (34 MiB if every text is at `max_query_length` 2048), and the
ring never holds more than 300,000 rows whatever `history` says (the oldest windows go first;
`/queries` then says `history_capped: true`). A row is 80 bytes (a shared pointer to the
statement's identity and text, and its 8 counters); texts are held once per statement, not per
window. A typical server runs far fewer than 5,000 distinct statements per minute.

## How it is measured

- **One PostgreSQL 15** (initdb in a temp dir, run as `postgres`, `pg_stat_statements`
  preloaded, `log_connections = on`). Each tool logs in as its own role (`vigil` for pgvigil,
  `exporter` for the exporter, both in `pg_monitor`) so the server can tell their costs apart.
- **Start-up**: from `exec` to the first `/readyz` 200 (exporter: first `/metrics` 200) and to
  the first successful probe (`/health` → `database.state == "up"`; exporter: `pg_up 1`), polled
  every 5 ms.
- **RSS**: `VmRSS` from `/proc/PID/status`, after 10 warm-up scrapes and again after
  {args.scrapes:,} scrapes.
- **PSS**: `Pss` from `/proc/PID/smaps_rollup` at the same moment: shared library pages are
  split among the processes that map them (PostgreSQL maps libc too, so both tools gain a little).
- **Library floor**: an empty C program (`pause()`) linked with `--no-as-needed` against the
  binary's own `NEEDED` list (from `readelf -d`), in the same order; its `VmRSS` 0.5 s after start.
  That is what loading the libraries costs before any code of the tool runs.
- **/metrics latency**: {args.scrapes:,} sequential GETs on one keep-alive connection (Python
  `http.client`, like a scraper that never waits), one tool at a time; p50/p99 of the wall time per
  response. **CPU per 1,000 scrapes**: `utime + stime` from `/proc/PID/stat` over that loop.
- **Idle CPU and background statements**: a {args.idle_seconds:.0f} s window with no scrapes at
  all (what the tool's own timers cost).
- **Statements**: `sum(calls)` from `pg_stat_statements` grouped by role, before/after. Per scrape
  = (delta during the scrape loop − the idle rate × loop duration) ÷ scrapes. Per minute when
  scraped every 15 s = idle rate + 4 × per scrape.
- **Connections**: held = `pg_stat_activity` rows per role (max of two samples); opened =
  `connection authorized: user=…` lines in the server log (the hourly figure extrapolates the idle
  window).
- **/livez**: `wrk -t2 -c32 -d{args.wrk_seconds}s --latency`. The exporter has no liveness
  endpoint; its landing page `/` (no database work) stands in. With more connections than
  HTTP worker threads, pgvigil answers each request with `Connection: close` (so idle or slow
  clients cannot pin its workers) and wrk reconnects; a silent close would show up as socket read
  errors below the targets.

## Reproduce

```sh
bench/run.sh                 # installs wrk, prometheus-postgres-exporter, postgresql-15 if missing,
                             # builds build-bench/ (Release), runs everything, rewrites this page
BENCH_IDLE_SECONDS=120 BENCH_SCRAPES=5000 bench/run.sh   # longer windows
BENCH_WRITE_DOCS=0 bench/run.sh                          # print only
PGVIGIL_BIN=/path/to/pgvigil bench/run.sh                # skip the build
bench/history_ring.sh        # /queries history ring memory at 5,000 statements
```

Everything runs on loopback with free ports; the temp dir and every process are removed on exit.
The exit status is 0 when every target passes.
"""
    # Sections measured elsewhere (the Neon idle figures) follow this marker; keep them.
    marker = "<!-- measured elsewhere: kept by bench/run.sh -->"
    try:
        with open(args.docs) as f:
            old = f.read()
        if marker in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(marker):]
    except OSError:
        pass
    with open(args.docs, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
