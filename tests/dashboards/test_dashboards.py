#!/usr/bin/env python3
"""Checks the Grafana dashboards and the alert rules in dashboards/ (python3 stdlib only).

Always:
  - dashboards: valid JSON, importable structure (uid, title, panels with ids and gridPos), a
    `datasource` variable of type prometheus and namespace/pod/instance variables, no hard-coded
    data source uid, a unit on every panel, a PromQL expression on every target;
  - rules: `promtool check rules`, `promtool test rules`; every alert has `for:`, a severity, a
    summary, a description using $value and a runbook_url whose anchor exists in docs/runbook.md;
    every alert has a fires and a does-not-fire case in the unit tests;
  - every metric name referenced by a dashboard or rule exists: in the /metrics text of a running
    pgvigil when PGVIGIL_METRICS_URL is set, else in a list compiled from the agent's source.
Live (PGVIGIL_LIVE=1, PGVIGIL_BINARY=path to pgvigil): starts PostgreSQL (initdb in a temp dir),
pgvigil, and a real Prometheus (/usr/bin/prometheus, scrape every 1s, the rules loaded) on
loopback; checks every metric name against pgvigil's /metrics, `promtool check metrics` on it,
that every expression parses and runs through /api/v1/query, that the core panels return data
and that Prometheus evaluates every rule without error. Everything started is stopped.

Prints one line per failure and a final "N passed, M failed"; exits non-zero on any failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import live_stack  # noqa: E402 - PostgreSQL, processes and Prometheus for the live checks
from live_stack import PG_BIN, free_port  # noqa: E402,F401 - also used by fleet_live_test

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASH_DIR = os.path.join(ROOT, "dashboards")
DASHBOARDS = ["pgvigil-overview.json", "pgvigil-queries.json"]
RULES = os.path.join(DASH_DIR, "alerts", "pgvigil-alerts.yaml")
RULE_TESTS = os.path.join(DASH_DIR, "alerts", "pgvigil-alerts.test.yaml")
RUNBOOK = os.path.join(ROOT, "docs", "runbook.md")

# Panels that must show data against any healthy PostgreSQL (live mode).
CORE_PANELS = {
    "pgvigil-overview.json": [
        "Database state", "Database usable (/health/db)", "Last probe ok (pg_up)",
        "Probe latency percentiles", "Probe outcomes", "Pool connections",
        "Connections vs max_connections", "Transactions", "Database size", "Locks",
        "Longest transaction", "Collector duration", "pgvigil CPU", "pgvigil memory (RSS)",
    ],
    "pgvigil-queries.json": ["Longest transaction by state", "Top statements by execution time",
                             "Top statements by calls"],
}
# Series Prometheus makes itself; they are not in pgvigil's /metrics.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
# postgres_exporter names promtool's linter dislikes; kept for compatibility (see
# agent/pgstats/collectors/).
ALLOWED_LINT = {
    'pg_locks_count non-histogram and non-summary metrics should not have "_count" suffix',
    'pg_stat_activity_count non-histogram and non-summary metrics should not have "_count" '
    'suffix',
}

results = {"passed": 0, "failed": 0}


def check(cond, message):
    if cond:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL:", message)
    return cond


# ---------------------------------------------------------------- PromQL helpers

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """Metric names referenced by a PromQL expression (functions, labels, keywords left out)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\{[^{}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        tok, call = m.group(1), m.group(2)
        if call or tok.lower() in KEYWORDS:
            continue
        names.add(tok)
    return names


def grafana_to_promql(expr, job=".+"):
    """Replaces Grafana's template variables with what Grafana would send for "All". `job`: the
    job variable's "All", the regex of the jobs that export pgvigil_build_info."""
    for var, value in (("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "5m"),
                       ("$namespace", ".*"), ("$pod", ".*"), ("$instance", ".*"),
                       ("$datname", ".*"), ("$job", job)):
        expr = expr.replace(var, value)
    return expr


# ---------------------------------------------------------------- rules file (no YAML module)

def parse_rules(path):
    """Minimal parser for our rule file: a list of dicts with alert, expr, for, labels,
    annotations (strings, folded blocks joined with spaces)."""
    lines = open(path).read().splitlines()
    rules, cur, section, i = [], None, None, 0

    def value_at(idx, key_indent, raw):
        raw = raw.strip()
        if raw in (">-", ">", "|", "|-"):
            parts, j = [], idx + 1
            while j < len(lines) and (not lines[j].strip() or
                                      len(lines[j]) - len(lines[j].lstrip()) > key_indent):
                parts.append(lines[j].strip())
                j += 1
            return " ".join(p for p in parts if p), j
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        return raw, idx + 1

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#") or not stripped:
            i += 1
            continue
        m = re.match(r"- alert:\s*(\S+)", stripped)
        if m:
            cur = {"alert": m.group(1), "labels": {}, "annotations": {}, "indent": indent + 2}
            rules.append(cur)
            section = None
            i += 1
            continue
        m = re.match(r"([A-Za-z_]+):\s*(.*)$", stripped)
        if cur is not None and m:
            key, raw = m.group(1), m.group(2)
            if indent == cur["indent"]:
                if key in ("labels", "annotations"):
                    section = key
                    i += 1
                    continue
                section = None
                cur[key], i = value_at(i, indent, raw)
                continue
            if section and indent > cur["indent"]:
                cur[section][key], i = value_at(i, indent, raw)
                continue
        i += 1
    return rules


def unscoped_selectors(expr):
    """Metric names in `expr` whose selector does not carry job=~"$job"."""
    e = re.sub(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^{}]*job=~\"\$job\"[^{}]*\}", " ", expr)
    return metric_names(e)


def selects_only_pgvigil(expr):
    """pgvigil_* names are pgvigil's own; pg_* and up need a join with pgvigil_build_info."""
    foreign = {n for n in metric_names(expr) if not n.startswith("pgvigil_")}
    return not foreign or "on (job, instance)" in expr and "pgvigil_build_info" in expr


def github_anchors(markdown):
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


# ---------------------------------------------------------------- metric name sources

def static_metric_names():
    """Sample names pgvigil can export, compiled from the agent's source."""
    names = set()
    hist = set()
    for dirpath, _, files in os.walk(os.path.join(ROOT, "agent")):
        for f in files:
            if not f.endswith((".cpp", ".hpp")):
                continue
            text = open(os.path.join(dirpath, f), errors="replace").read()
            for m in re.finditer(r'Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\("([^"]+)"\)',
                                 text):
                names.add(m.group(2))
                if m.group(1) in ("Histogram", "Summary"):
                    hist.add(m.group(2))
            # Names registered through helpers (tables of names, process_* metrics).
            for m in re.finditer(r'"((?:pg|pgvigil|process)_[a-z0-9_]+)"', text):
                if not m.group(1).endswith("_"):
                    names.add(m.group(1))
    # pgstats builds these from column and setting names (pgstats/collectors/stat_database.cpp, settings.cpp).
    for col in ("numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit",
                "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted",
                "conflicts", "temp_files", "temp_bytes", "deadlocks", "blk_read_time",
                "blk_write_time"):
        names.add("pg_stat_database_" + col)
    for s in ("max_connections", "shared_buffers_bytes", "effective_cache_size_bytes",
              "work_mem_bytes", "maintenance_work_mem_bytes", "max_wal_size_bytes",
              "random_page_cost", "seq_page_cost", "max_worker_processes", "max_parallel_workers",
              "superuser_reserved_connections"):
        names.add("pg_settings_" + s)
    for h in hist:
        names.update({h + "_bucket", h + "_sum", h + "_count"})
    return names


def names_from_exposition(text):
    """Sample names in Prometheus text format, plus those of declared families without samples
    yet (an opt-in label set not used so far still declares its name)."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\w+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) in ("histogram", "summary"):
                names.update({m.group(1) + "_bucket", m.group(1) + "_sum", m.group(1) + "_count"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# ---------------------------------------------------------------- static checks

def load_dashboards():
    out = {}
    for name in DASHBOARDS:
        path = os.path.join(DASH_DIR, name)
        try:
            out[name] = json.load(open(path))
            check(True, "")
        except Exception as e:  # noqa: BLE001
            check(False, f"{name}: not valid JSON: {e}")
    return out


def walk_datasources(node, where, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                found.append((where, v))
            walk_datasources(v, where, found)
    elif isinstance(node, list):
        for v in node:
            walk_datasources(v, where, found)


def dashboard_exprs(d):
    """(panel title, expr) for every target of every panel (rows included)."""
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(d.get("panels", [])):
        for t in p.get("targets", []):
            out.append((p.get("title", "?"), t.get("expr", "")))
    return out


def check_dashboard(name, d):
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        check(key in d, f"{name}: missing top-level {key}")
    check("__inputs" not in d, f"{name}: has __inputs (export for sharing externally is not "
          "provisionable); use the datasource variable")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
          f"{name}: needs a `datasource` variable of type datasource/prometheus, got {ds}")
    job = variables.get("job", {})
    check(job.get("type") == "query" and "pgvigil_build_info" in job.get("definition", "") and
          job.get("includeAll") and job.get("allValue") in (None, ""),
          f"{name}: needs a `job` variable listing pgvigil_build_info's jobs whose All is that "
          "list (no allValue such as .*, which would take in other exporters)")
    for var in ("job", "namespace", "pod", "instance", "datname"):
        v = variables.get(var)
        check(v is not None and v.get("type") == "query",
              f"{name}: needs a `{var}` query variable")
        if v:
            check(v.get("datasource", {}).get("uid") in ("${datasource}", "$datasource"),
                  f"{name}: variable {var} must use the datasource variable")
    found = []
    walk_datasources(d.get("panels", []), name, found)
    walk_datasources(d.get("templating", {}), name, found)
    for _, ds_ref in found:
        uid = ds_ref.get("uid") if isinstance(ds_ref, dict) else ds_ref
        check(uid in ("${datasource}", "$datasource"),
              f"{name}: hard-coded data source {ds_ref!r}")
    ids, titles = set(), set()
    for p in d.get("panels", []):
        pid, title = p.get("id"), p.get("title", "")
        check(pid not in ids, f"{name}: duplicate panel id {pid}")
        ids.add(pid)
        gp = p.get("gridPos", {})
        check(all(k in gp for k in ("h", "w", "x", "y")) and gp.get("x", 0) + gp.get("w", 0) <= 24,
              f"{name}: panel {title!r} has a bad gridPos {gp}")
        if p.get("type") == "row":
            continue
        check(title and title not in titles, f"{name}: panel title {title!r} empty or repeated")
        titles.add(title)
        check(len(p.get("description", "")) >= 20,
              f"{name}: panel {title!r} needs a description")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        check(bool(unit), f"{name}: panel {title!r} has no unit")
        targets = p.get("targets", [])
        check(bool(targets), f"{name}: panel {title!r} has no targets")
        for t in targets:
            check(bool(t.get("expr", "").strip()), f"{name}: panel {title!r} has an empty expr")
            check(bool(t.get("refId")), f"{name}: panel {title!r} target without refId")
            check(not unscoped_selectors(t.get("expr", "")),
                  f"{name}: panel {title!r}: every selector must carry job=~\"$job\", "
                  f"unscoped: {sorted(unscoped_selectors(t.get('expr', '')))}")
            # A sum over pg_* series is fine per sidecar (by ... instance), never across them.
            for by, agg in re.findall(r"\bsum\b(?:\s+(?:by|without)\s*\(([^)]*)\))?\s*\(\s*"
                                      r"(?:(?:rate|increase)\s*\()?\s*(pg_[a-z_]+)",
                                      t.get("expr", "")):
                check("instance" in by, f"{name}: panel {title!r} sums database-wide {agg} across "
                      "sidecars; take max by (...) per database")
    for title in CORE_PANELS.get(name, []):
        check(title in titles, f"{name}: core panel {title!r} missing")
    for p in d.get("panels", []):
        if p.get("title", "").startswith("Top statements"):
            for t in p.get("targets", []):
                check("pgvigil_top_statement_info" in t.get("expr", "") and
                      t.get("legendFormat") == "{{query}}",
                      f"{name}: panel {p['title']!r} must label its legend with the query text "
                      "(join pgvigil_top_statement_info, legendFormat {{query}})")


def check_rules():
    rules = parse_rules(RULES)
    check(len(rules) >= 12, f"expected at least 12 alerts, parsed {len(rules)}")
    anchors = github_anchors(open(RUNBOOK).read()) if os.path.exists(RUNBOOK) else set()
    check(bool(anchors), "docs/runbook.md missing or without headings")
    tests_text = open(RULE_TESTS).read()
    for r in rules:
        a = r["alert"]
        check(bool(r.get("expr")), f"{a}: no expr")
        check("for" in r, f"{a}: no for:")
        check(r["labels"].get("severity") in ("critical", "warning", "info"),
              f"{a}: severity label missing or unknown")
        check(bool(r["annotations"].get("summary")), f"{a}: no summary")
        check("$value" in r["annotations"].get("description", ""),
              f"{a}: description does not show $value")
        url = r["annotations"].get("runbook_url", "")
        m = re.match(r"https://\S+/docs/runbook\.md#([\w-]+)$", url)
        check(m is not None and m.group(1) in anchors,
              f"{a}: runbook_url {url!r} is not an absolute URL of a docs/runbook.md section")
        check("$labels.instance" in r["annotations"].get("description", ""),
              f"{a}: the description must name the instance ($labels.instance)")
        check(selects_only_pgvigil(r.get("expr", "")),
              f"{a}: matches pg_* series of any job; join with pgvigil_build_info "
              "(and on (job, instance) pgvigil_build_info)")
        fires = re.search(r"alertname: %s\n\s+exp_alerts:\n\s+- exp_labels" % a, tests_text)
        quiet = re.search(r"alertname: %s\n\s+exp_alerts: \[\]" % a, tests_text)
        check(fires and quiet, f"{a}: unit tests need a firing and a quiet case")
    helm = os.path.join(ROOT, "helm", "pgvigil", "files", "alerts.yaml")
    if os.path.exists(helm):
        def groups(path):
            text = open(path).read()
            return text[text.find("\ngroups:"):]
        check(groups(helm) == groups(RULES),
              "helm/pgvigil/files/alerts.yaml differs from dashboards/alerts/pgvigil-alerts.yaml "
              "(from `groups:` on); copy the rules over")
    promtool = shutil.which("promtool")
    if not check(promtool is not None, "promtool not found (Debian package prometheus)"):
        return rules
    for args in (["check", "rules", RULES], ["test", "rules", RULE_TESTS]):
        p = subprocess.run([promtool] + args, capture_output=True, text=True,
                           cwd=os.path.dirname(RULES), timeout=120)
        check(p.returncode == 0, f"promtool {' '.join(args[:2])} failed:\n{p.stdout}{p.stderr}")
    return rules


def all_exprs(dashboards, rules):
    out = []
    for name, d in dashboards.items():
        for title, expr in dashboard_exprs(d):
            out.append((f"{name}: {title}", expr))
    for r in rules:
        out.append((f"rule {r['alert']}", r.get("expr", "")))
    return out


def check_names(exprs, available, source):
    for where, expr in exprs:
        for n in sorted(metric_names(expr)):
            check(n in available or n in SYNTHETIC,
                  f"{where}: metric {n} is not in {source}")


# ---------------------------------------------------------------- live mode

def wait_for(pred, timeout, step=0.5, alive=lambda: True):
    end = time.time() + timeout
    while time.time() < end and alive():
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(step)
    return False


class Live(live_stack.LiveStack):
    """PostgreSQL + one pgvigil + Prometheus on loopback, torn down by close()."""

    def __init__(self, binary):
        super().__init__("pgvigil-dash-")
        self.binary = binary

    def start(self):
        self.start_postgres()
        self.http_port = free_port()
        toml = os.path.join(self.dir, "pgvigil.toml")
        # Short timers so everything has data within seconds; everything else on its defaults
        # (top_n_labels included: the queries dashboard's top panels must have data on them).
        with open(toml, "w") as f:
            f.write(f'[database]\nurl_env = "PGVIGIL_DASH_URL"\n[http]\n'
                    f'listen = "127.0.0.1:{self.http_port}"\n'
                    '[probe]\ninterval = "1s"\ntimeout = "500ms"\n'
                    '[sampling]\nstatements_interval = "2s"\nactivity_interval = "2s"\n'
                    '[stats]\ninterval = "5s"\n'
                    + os.environ.get("PGVIGIL_LIVE_EXTRA_TOML", "").replace("\\n", "\n"))
        env = dict(os.environ, PGVIGIL_DASH_URL=self.vigil_url())
        self.spawn("pgvigil", [self.binary, "--config", toml], env, "pgvigil.log")
        self.start_prometheus(RULES, [("pgvigil", [f"127.0.0.1:{self.http_port}"])])

    def start_workload(self):
        """An application beside pgvigil: a few statements every 0.5s until close(), so the
        statement panels (pgvigil leaves its own queries out) and the opt-in top-statement
        gauges have something to show."""
        script = "CREATE TABLE IF NOT EXISTS dash_load (id int, note text);\n"
        step = ("INSERT INTO dash_load SELECT g, md5(g::text) FROM generate_series(1, 100) g;\n"
                "SELECT count(*), max(note) FROM dash_load WHERE id % 7 = 3;\n"
                "SELECT relname FROM pg_class ORDER BY relpages DESC LIMIT 5;\n"
                "SELECT pg_sleep(0.5);\n")
        path = os.path.join(self.dir, "workload.sql")
        with open(path, "w") as f:
            f.write(script + step * 400)  # ~200s, far longer than the checks
        os.chmod(path, 0o644)
        self.spawn("workload", self.as_pg + ["psql", "-h", self.dir, "-p", str(self.pg_port),
                                             "-U", "postgres", "-d", "postgres", "-q", "-f", path],
                   dict(os.environ), "workload.log")

    def agent_alive(self):
        return "pgvigil" in self.procs and self.procs["pgvigil"].poll() is None

    def metrics(self):
        return http_get(f"http://127.0.0.1:{self.http_port}/metrics")


def live_checks(dashboards, rules):
    binary = os.environ.get("PGVIGIL_BINARY", "")
    if not check(os.access(binary, os.X_OK), f"PGVIGIL_BINARY={binary!r} is not executable"):
        return
    live = Live(binary)
    try:
        live.start()
        ready = wait_for(lambda: live.query('pgvigil_probes_total{outcome="ok"} > 0')
                         ["data"]["result"], 60, alive=live.agent_alive)
        if not check(ready, "pgvigil or Prometheus did not come up with data within 60s\n"
                     + live.log("pgvigil.log") + live.log("prometheus.log")):
            return
        live.start_workload()
        # Database statistics run on their own timer, right after the first connect.
        wait_for(lambda: "pg_stat_database_numbackends" in live.metrics(), 40)
        # The top-statement gauges cover the last sampling interval, hence the steady workload.
        wait_for(lambda: "pgvigil_top_statement_calls{" in live.metrics(), 15)
        wait_for(lambda: "pgvigil_top_statement_info{" in live.metrics(), 15)
        time.sleep(5)  # a few more scrapes, so rate() over 1m has points
        text = live.metrics()
        exprs = all_exprs(dashboards, rules)
        check_names(exprs, names_from_exposition(text), "the live pgvigil /metrics")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        problems = [ln for ln in (p.stdout + p.stderr).splitlines()
                    if ln.strip() and ln.strip() not in ALLOWED_LINT]
        check(not problems, "promtool check metrics on pgvigil's output:\n" + "\n".join(problems))
        with_data = {}
        for where, expr in exprs:
            res = live.query(grafana_to_promql(expr))
            ok = res.get("status") == "success"
            check(ok, f"{where}: Prometheus rejected {expr!r}: {res.get('error')}")
            if ok:
                with_data[where] = with_data.get(where, False) or bool(res["data"]["result"])
        for name, titles in CORE_PANELS.items():
            for title in titles:
                check(with_data.get(f"{name}: {title}", False),
                      f"{name}: core panel {title!r} returned no data")
        # The top panels' legends ({{query}}) read as query text, not hashes.
        for where, expr in exprs:
            if "pgvigil_top_statement_info" not in expr:
                continue
            res = live.query(grafana_to_promql(expr))
            series = res.get("data", {}).get("result", []) if res.get("status") == "success" else []
            texts = [s["metric"].get("query", "") for s in series]
            check(bool(texts) and all(t.strip() for t in texts),
                  f"{where}: legend labels should be query texts, got {texts}")
            check(any("dash_load" in t for t in texts),
                  f"{where}: the workload's statements should be in the legend, got {texts}")

        def rules_evaluated():
            groups = live.query_rules()
            return groups and all(r.get("lastEvaluation", "").startswith("20") and
                                  not r["lastEvaluation"].startswith("0001")
                                  for g in groups for r in g["rules"])
        live.query_rules = lambda: json.loads(http_get(
            f"http://127.0.0.1:{live.prom_port}/api/v1/rules"))["data"]["groups"]
        check(wait_for(rules_evaluated, 20), "Prometheus did not evaluate the rules")
        for g in live.query_rules():
            for r in g["rules"]:
                check(r.get("health") == "ok",
                      f"rule {r.get('name')}: health {r.get('health')} {r.get('lastError', '')}")
        check(not any(r.get("name") == "PgvigilTargetMissing" and r.get("state") != "inactive"
                      for g in live.query_rules() for r in g["rules"]),
              "PgvigilTargetMissing is active although pgvigil is scraped")
    finally:
        live.close()


def self_test():
    check(metric_names('sum by (le) (rate(a_bucket{x="y{z}"}[$__rate_interval])) / b') ==
          {"a_bucket", "b"}, "metric_names: basic")
    check(metric_names("histogram_quantile(0.95, sum by (namespace, le) (rate(x[5m]))) > 1e-3")
          == {"x"}, "metric_names: functions and numbers")
    check(metric_names("absent(up{job=~\".*\"}) or (up == 0) unless on(a) c bool d") ==
          {"up", "c", "d"}, "metric_names: keywords")
    check(names_from_exposition("# TYPE h histogram\nc_total 1\n# TYPE g gauge\n") ==
          {"h", "h_bucket", "h_sum", "h_count", "c_total", "g"}, "names_from_exposition")
    check(grafana_to_promql('x{pod=~"$pod"}[$__rate_interval]') == 'x{pod=~".*"}[1m]',
          "grafana_to_promql")
    check(unscoped_selectors('max(a{job=~"$job", x="1"}) / b{x="y"} + c') == {"b", "c"},
          "unscoped_selectors")
    check(selects_only_pgvigil("pgvigil_x > 1") and not selects_only_pgvigil("pg_x > 1") and
          selects_only_pgvigil("pg_x > 1 and on (job, instance) pgvigil_build_info"),
          "selects_only_pgvigil")


def check_generated():
    """dashboards/generate.py reproduces every committed file it writes, byte for byte."""
    sys.path.insert(0, DASH_DIR)
    try:
        import generate  # noqa: E402 - dashboards/generate.py
    finally:
        sys.path.pop(0)
    for rel, text in generate.render().items():
        path = os.path.join(ROOT, rel)
        same = os.path.exists(path) and open(path, "rb").read() == text.encode()
        check(same, f"{rel} is not what dashboards/generate.py writes; run it and commit")


def check_helm_copies():
    """The chart ships byte-identical copies (Helm reads only files inside the chart)."""
    helm_dir = os.path.join(ROOT, "helm", "pgvigil", "files", "dashboards")
    shipped = sorted(os.listdir(helm_dir)) if os.path.isdir(helm_dir) else []
    check(shipped == sorted(DASHBOARDS),
          f"helm/pgvigil/files/dashboards holds {shipped}, expected {sorted(DASHBOARDS)}; "
          "run `python3 dashboards/generate.py`")
    for name in DASHBOARDS:
        copy = os.path.join(helm_dir, name)
        same = os.path.exists(copy) and open(copy, "rb").read() == open(
            os.path.join(DASH_DIR, name), "rb").read()
        check(same, f"helm/pgvigil/files/dashboards/{name} differs from dashboards/{name}; "
              "run `python3 dashboards/generate.py`")


def main():
    self_test()
    dashboards = load_dashboards()
    for name, d in dashboards.items():
        check_dashboard(name, d)
    check_helm_copies()
    check_generated()
    rules = check_rules()
    exprs = all_exprs(dashboards, rules)
    url = os.environ.get("PGVIGIL_METRICS_URL")
    if url:
        try:
            check_names(exprs, names_from_exposition(http_get(url)), url)
        except OSError as e:
            check(False, f"cannot read PGVIGIL_METRICS_URL {url}: {e}")
    else:
        check_names(exprs, static_metric_names(), "the metric names compiled from agent/")
    if os.environ.get("PGVIGIL_LIVE") == "1":
        live_checks(dashboards, rules)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # noqa: BLE001 - a crash is a failure, with its trace
        traceback.print_exc()
        print(f"{results['passed']} passed, {results['failed'] + 1} failed")
        sys.exit(1)
