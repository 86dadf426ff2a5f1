#!/usr/bin/env python3
"""Measures one running scale cluster: for each tool in turn (pgvigil on its defaults, then
postgres_exporter scraped every 60 s, then every 15 s), alone against the database: start it,
warm up, then over the window take the growth of pg_stat_statements' total_exec_time and calls
for the tool's role (the benchmark's own statements run as other roles and are left out) and
the tool's RSS (anonymous and total) at the end. Prints one Markdown table; --json writes the
figures."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def psql(args, sql):
    base = ["psql", "-h", args.socket_dir, "-p", str(args.port), "-U", "postgres", "-d", "postgres",
            "-Atq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql]
    if os.geteuid() == 0:
        base = ["runuser", "-u", "postgres", "--"] + base
    out = subprocess.run(base, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def role_totals(args, role):
    rows = psql(args, "SELECT coalesce(sum(s.total_exec_time), 0), coalesce(sum(s.calls), 0) "
                      "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                      f"WHERE r.rolname = '{role}'")
    return float(rows[0][0]), int(rows[0][1])


def per_statement(args, role):
    """queryid -> (calls, exec ms, first words of the query) for the role's statements."""
    rows = psql(args, "SELECT s.queryid, s.calls, s.total_exec_time, "
                      "regexp_replace(left(s.query, 70), '\\s+', ' ', 'g') "
                      "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                      f"WHERE r.rolname = '{role}'")
    return {r[0]: (int(r[1]), float(r[2]), r[3]) for r in rows}


def breakdown(before, after, minutes):
    """The statements of the window, most expensive first: (exec ms/min, calls/min, query)."""
    out = []
    for qid, (calls, ms, text) in after.items():
        c0, m0, _ = before.get(qid, (0, 0.0, ""))
        if calls > c0:
            out.append(((ms - m0) / minutes, (calls - c0) / minutes, text))
    return sorted(out, reverse=True)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def get(port, path, timeout=30):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except OSError as e:
        return getattr(e, "code", 0), b""


def run_tool(args, name, role, argv, env, port, scrape_every):
    log = open(os.path.join(args.work, f"{name}.log"), "wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while get(port, "/metrics", 2)[0] != 200:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start; see {log.name}")
            time.sleep(0.2)
        next_scrape = time.time()

        rss_series = []  # (seconds since start, RssAnon MiB) every --rss-every seconds
        next_rss = time.time()
        started = time.time()

        def wait_until(t_end):
            nonlocal next_scrape, next_rss
            while time.time() < t_end:
                if time.time() >= next_scrape:
                    get(port, "/metrics")
                    next_scrape += scrape_every
                if args.rss_every and time.time() >= next_rss:
                    rss_series.append((round(time.time() - started),
                                       status_kib(proc.pid, "RssAnon") / 1024))
                    next_rss += args.rss_every
                time.sleep(min(0.5, max(0.0, t_end - time.time())))

        wait_until(time.time() + args.warmup)
        ms0, calls0 = role_totals(args, role)
        each0 = per_statement(args, role)
        t0 = time.time()
        wait_until(t0 + args.minutes * 60)
        ms1, calls1 = role_totals(args, role)
        each1 = per_statement(args, role)
        minutes = (time.time() - t0) / 60
        return {"tool": name, "exec_ms_per_min": (ms1 - ms0) / minutes,
                "statements_per_min": (calls1 - calls0) / minutes,
                "rss_anon_mib": status_kib(proc.pid, "RssAnon") / 1024,
                "rss_mib": status_kib(proc.pid, "VmRSS") / 1024, "minutes": minutes,
                "rss_anon_series": rss_series,
                "statements": breakdown(each0, each1, minutes)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def print_breakdown(args, v):
    print(f"\n<details><summary>{args.size}: pgvigil's statements in the window</summary>\n")
    print("| exec ms/min | calls/min | statement |")
    print("|---:|---:|---|")
    for ms, calls, text in v["statements"]:
        print(f"| {ms:.1f} | {calls:.1f} | `{text.replace('|', '¦')}` |")
    print("\n</details>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--socket-dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pgvigil", required=True)
    ap.add_argument("--exporter", default="/usr/bin/prometheus-postgres-exporter")
    ap.add_argument("--vigil-url", required=True)
    ap.add_argument("--exporter-url", required=True)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--json", default="")
    ap.add_argument("--tools", default="pgvigil,e60,e15",
                    help="which runs: pgvigil, e60 (exporter scraped every 60 s), e15")
    ap.add_argument("--rss-every", type=float, default=0,
                    help="also sample each tool's RssAnon every N seconds (the hour-long run)")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "PGVIGIL_DATABASE_URL", "DATA_SOURCE_NAME")}
    tools = set(args.tools.split(","))
    results = []
    v = e60 = e15 = None
    if "pgvigil" in tools:
        vport = free_port()
        config = os.path.join(args.work, "pgvigil.toml")
        with open(config, "w") as f:
            f.write(f'[http]\nlisten = "127.0.0.1:{vport}"\n')
            # Extra pgvigil settings, e.g. BENCH_PGVIGIL_TOML=$'[probe]\nreuse_traffic = false'
            f.write(os.environ.get("BENCH_PGVIGIL_TOML", "") + "\n")
        v = run_tool(args, "pgvigil", "vigil", [args.pgvigil, "--config", config],
                     dict(env, PGVIGIL_DATABASE_URL=args.vigil_url), vport, 15)
        results.append(v)
    for every in (60, 15):
        if f"e{every}" not in tools:
            continue
        eport = free_port()
        r = run_tool(args, f"exporter, scraped every {every} s", "exporter",
                     [args.exporter, f"--web.listen-address=127.0.0.1:{eport}"],
                     dict(env, DATA_SOURCE_NAME=args.exporter_url), eport, every)
        results.append(r)
        if every == 60:
            e60 = r
        else:
            e15 = r
    print(f"\n### {args.size}\n")
    print("| tool | DB exec time, ms/min | statements/min | RSS anonymous, MiB | RSS, MiB |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['tool']} | {r['exec_ms_per_min']:.1f} | {r['statements_per_min']:.1f} | "
              f"{r['rss_anon_mib']:.1f} | {r['rss_mib']:.1f} |")

    def ratio(a, b):
        return f"{a / b:.2f}×" if b else "∞"

    for r in results:
        if r["rss_anon_series"]:
            print(f"\n{r['tool']}: RssAnon (MiB) by minute since start: " + ", ".join(
                f"{t // 60}: {mib:.1f}" for t, mib in r["rss_anon_series"] if t % 60 < args.rss_every))
    if v is None or e60 is None or e15 is None:
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size": args.size, "results": results}, f, indent=1)
        if v is not None:
            print_breakdown(args, v)
        return 0
    print(f"\npgvigil ÷ exporter: exec time {ratio(v['exec_ms_per_min'], e60['exec_ms_per_min'])} "
          f"(1-min scrape, target ≤ 0.5×), {ratio(v['exec_ms_per_min'], e15['exec_ms_per_min'])} "
          f"(15 s scrape, target ≤ 0.25×); statements/min "
          f"{ratio(v['statements_per_min'], e60['statements_per_min'])} (1-min scrape, target ≤ 1×); "
          f"RSS anonymous {ratio(v['rss_anon_mib'], e60['rss_anon_mib'])}, "
          f"RSS {ratio(v['rss_mib'], e60['rss_mib'])} (target ≤ 1×). "
          f"Window {args.minutes:g} min per tool after {args.warmup:g} s warm-up.")
    print_breakdown(args, v)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
