#!/usr/bin/env python3
"""Writes pgvigil-overview.json and pgvigil-queries.json (standard Grafana dashboard JSON).

The JSON files are the artifacts (import them, or provision them with provisioning/); this script
is how they are kept consistent: one selector, a datasource variable instead of any fixed uid,
a unit on every panel. Edit here, run `python3 dashboards/generate.py`, commit both.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
# The Helm chart ships identical copies (Helm cannot read files outside the chart);
# tests/dashboards/test_dashboards.py checks they match.
HELM_COPY = os.path.join(HERE, "..", "helm", "pgvigil", "files", "dashboards")
SEL = 'namespace=~"$namespace", pod=~"$pod", instance=~"$instance"'
BY = "namespace, pod, instance"
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def sel(extra=""):
    return "{" + SEL + (", " + extra if extra else "") + "}"


class Layout:
    def __init__(self):
        self.panels = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "id": self.next_id,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1

    def _newline(self):
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def add(self, panel, w=12, h=8):
        if self.x + w > 24:
            self._newline()
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def target(expr, legend="", ref="A", fmt=None, instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": not instant,
         "instant": instant}
    if fmt:
        t["format"] = fmt
    return t


def targets(*pairs):
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(pairs)]


def timeseries(title, unit, tgts, description="", stack=False, minv=None, maxv=None):
    defaults = {"unit": unit, "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                         "showPoints": "never",
                                         "stacking": {"mode": "normal" if stack else "none"}}}
    if minv is not None:
        defaults["min"] = minv
    if maxv is not None:
        defaults["max"] = maxv
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS,
            "targets": tgts, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, unit, tgts, description="", mappings=None, thresholds=None):
    defaults = {"unit": unit, "mappings": mappings or [],
                "thresholds": thresholds or {"mode": "absolute",
                                             "steps": [{"color": "green", "value": None}]}}
    return {"type": "stat", "title": title, "description": description, "datasource": DS,
            "targets": tgts, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "auto"}}


def value_mappings(states):
    """states: list of (code, text, color)."""
    return [{"type": "value", "options": {str(code): {"text": text, "color": color, "index": i}}}
            for i, (code, text, color) in enumerate(states)]


def one_hot_expr(metric, states):
    """Encodes a one-hot gauge family as a single number per target (see value_mappings)."""
    parts = []
    for code, name, _ in states:
        selector = sel('state="%s"' % name)
        parts.append(f"(sum by ({BY}) ({metric}{selector}) * {code})")
    return " + ".join(parts)


def state_timeline(title, expr, states, description=""):
    defaults = {"unit": "none", "mappings": value_mappings(states),
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "text", "value": None}]}}
    return {"type": "state-timeline", "title": title, "description": description, "datasource": DS,
            "targets": [target(expr, "{{namespace}}/{{pod}} {{instance}}")],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                        "legend": {"displayMode": "list", "placement": "bottom"}}}


def heatmap(title, expr, unit, description=""):
    return {"type": "heatmap", "title": title, "description": description, "datasource": DS,
            "targets": [target(expr, "{{le}}", fmt="heatmap")],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"calculate": False, "yAxis": {"unit": unit},
                        "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"},
                        "tooltip": {"show": True, "yHistogram": True}}}


def quantiles(metric, qs=(0.5, 0.9, 0.99), by=BY, extra=""):
    return [(f"histogram_quantile({q}, sum by ({by}, le) "
             f"(rate({metric}_bucket{sel(extra)}[{RATE}])))", f"p{int(q * 100)} {{{{pod}}}}")
            for q in qs]


def variables():
    def query_var(name, label, query):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": name}, "definition": query,
                "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "sort": 1, "hide": 0}
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": ""},
        query_var("namespace", "Namespace", "label_values(pgvigil_build_info, namespace)"),
        query_var("pod", "Pod",
                  'label_values(pgvigil_build_info{namespace=~"$namespace"}, pod)'),
        query_var("instance", "Instance",
                  'label_values(pgvigil_build_info{namespace=~"$namespace", pod=~"$pod"}, '
                  'instance)'),
    ]}


def dashboard(uid, title, description, panels, tags):
    return {
        "uid": uid, "title": title, "description": description, "tags": tags,
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "timezone": "",
        "templating": variables(), "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "pgvigil dashboards", "type": "dashboards", "tags": ["pgvigil"],
                   "asDropdown": True, "includeVars": True, "keepTime": True}],
        "panels": panels,
    }


USABLE = sel('state=~"up|degraded|idle"')
SAMPLERS = sel('collector=~"statements|activity"')
DB_STATES = [(0, "starting", "blue"), (1, "up", "green"), (2, "degraded", "yellow"),
             (3, "down", "red"), (4, "idle", "purple"), (5, "waking", "orange"),
             (6, "misconfigured", "dark-red")]
COMPUTE_STATES = [(0, "unknown", "text"), (1, "init", "orange"), (2, "active", "green"),
                  (3, "idle", "purple")]


def overview():
    L = Layout()
    L.row("Health")
    L.add(state_timeline("Database state", one_hot_expr("pgvigil_db_state", DB_STATES),
                         DB_STATES, "pgvigil's view of the database (probe + Neon API)."),
          w=16, h=6)
    L.add(stat("Database usable (/health/db)", "bool_yes_no",
               [target(f"max by ({BY}) (pgvigil_db_state{USABLE})",
                       "{{pod}}")],
               "1 while the state is up, degraded or idle: what /health/db answers.",
               thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                         {"color": "green", "value": 1}]}),
          w=4, h=6)
    L.add(stat("Last probe ok (pg_up)", "bool_yes_no", [target(f"pg_up{sel()}", "{{pod}}")],
               thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                         {"color": "green", "value": 1}]}),
          w=4, h=6)
    L.add(timeseries("Probe latency percentiles", "s",
                     targets(*quantiles("pgvigil_probe_duration_seconds")),
                     "Latency of successful SELECT 1 probes."))
    L.add(heatmap("Probe latency heatmap",
                  f"sum by (le) (increase(pgvigil_probe_duration_seconds_bucket{sel()}[{RATE}]))",
                  "s"))
    L.add(timeseries("Probe outcomes", "ops", targets(
        (f"sum by (outcome) (rate(pgvigil_probes_total{sel()}[{RATE}]))", "{{outcome}}")),
        stack=True))
    L.add(timeseries("State changes", "short", targets(
        (f"sum by ({BY}) (increase(pgvigil_state_changes_total{sel()}[{RATE}]))", "{{pod}}"))))

    L.row("Neon")
    L.add(state_timeline("Neon compute state",
                         one_hot_expr("pgvigil_neon_compute_state", COMPUTE_STATES),
                         COMPUTE_STATES, "current_state from the Neon API."), w=12, h=6)
    L.add(timeseries("Cold starts", "short", targets(
        (f"sum by ({BY}) (increase(pgvigil_cold_starts_total{sel()}[{RATE}]))", "{{pod}}"))),
        w=6, h=6)
    L.add(timeseries("Cold start duration", "s",
                     targets(*quantiles("pgvigil_cold_start_duration_seconds", (0.5, 0.95)))),
          w=6, h=6)

    L.row("Connection pool")
    L.add(timeseries("Pool connections", "short", targets(
        (f"sum by (state) (pgvigil_pool_connections{sel()})", "{{state}}"),
        (f"sum(pgvigil_pool_max_connections{sel()})", "max")), stack=False), w=8)
    L.add(timeseries("Pool churn", "ops", targets(
        (f"sum(rate(pgvigil_pool_connections_opened_total{sel()}[{RATE}]))", "opened"),
        (f"sum by (reason) (rate(pgvigil_pool_connections_closed_total{sel()}[{RATE}]))",
         "closed {{reason}}"),
        (f"sum by (reason) (rate(pgvigil_pool_connect_errors_total{sel()}[{RATE}]))",
         "connect error {{reason}}"))), w=8)
    L.add(timeseries("Connect latency", "s",
                     targets(*quantiles("pgvigil_connect_duration_seconds", (0.5, 0.99)))), w=8)

    L.row("Database")
    L.add(timeseries("Connections vs max_connections", "short", targets(
        (f"sum by ({BY}) (pg_stat_database_numbackends{sel()})", "backends {{pod}}"),
        (f"max by ({BY}) (pg_settings_max_connections{sel()})", "max_connections {{pod}}"),
        (f"sum by (state) (pg_stat_activity_count{sel()})", "{{state}}"))), w=8)
    L.add(timeseries("Transactions", "ops", targets(
        (f"sum by (datname) (rate(pg_stat_database_xact_commit{sel()}[{RATE}]))",
         "commit {{datname}}"),
        (f"sum by (datname) (rate(pg_stat_database_xact_rollback{sel()}[{RATE}]))",
         "rollback {{datname}}"))), w=8)
    L.add(timeseries("Cache hit ratio", "percentunit", targets(
        (f"sum by (datname) (rate(pg_stat_database_blks_hit{sel()}[{RATE}])) / "
         f"(sum by (datname) (rate(pg_stat_database_blks_hit{sel()}[{RATE}])) + "
         f"sum by (datname) (rate(pg_stat_database_blks_read{sel()}[{RATE}])) > 0)",
         "{{datname}}")), "Shared buffer hits / (hits + reads); empty while idle.",
        minv=0, maxv=1), w=8)
    L.add(timeseries("Database size", "bytes", targets(
        (f"max by (datname) (pg_database_size_bytes{sel()})", "{{datname}}"))), w=8)
    L.add(timeseries("Locks", "short", targets(
        (f"sum by (mode) (pg_locks_count{sel()})", "{{mode}}")), stack=True), w=8)
    L.add(timeseries("Longest transaction", "s", targets(
        (f"max by (datname, state) (pg_stat_activity_max_tx_duration{sel()})",
         "{{datname}} {{state}}"))), w=8)

    L.row("Queries")
    L.add(timeseries("Slow / long-running queries", "short", targets(
        (f"max by ({BY}) (pgvigil_long_running_queries{sel()})", "running {{pod}}")),
        "Backends running longer than the slow-query threshold."), w=8)
    L.add(timeseries("Longest running query", "s", targets(
        (f"max by ({BY}) (pgvigil_long_running_max_seconds{sel()})", "{{pod}}"))), w=8)
    L.add(timeseries("Statement totals", "ops", targets(
        (f"sum(rate(pgvigil_statements_calls_total{sel()}[{RATE}]))", "calls/s"),
        (f"sum(rate(pgvigil_statements_rows_total{sel()}[{RATE}]))", "rows/s"))), w=8)

    L.row("pgvigil")
    L.add(timeseries("Collector age", "s", targets(
        (f"time() - max by (collector) "
         f"(pgvigil_collector_last_success_timestamp_seconds{sel()} > 0)", "{{collector}}")),
        "Seconds since each collector last succeeded."), w=8)
    L.add(timeseries("Collector errors", "ops", targets(
        (f"sum by (collector) (rate(pgvigil_collector_errors_total{sel()}[{RATE}]))",
         "{{collector}}"))), w=8)
    L.add(timeseries("Collector duration", "s", targets(
        (f"max by (collector) (pgvigil_collector_duration_seconds{sel()})", "{{collector}}"))),
        w=8)
    L.add(timeseries("pgvigil CPU", "percentunit", targets(
        (f"rate(process_cpu_seconds_total{sel()}[{RATE}])", "{{pod}}"))), w=8)
    L.add(timeseries("pgvigil memory (RSS)", "bytes", targets(
        (f"process_resident_memory_bytes{sel()}", "{{pod}}"))), w=8)
    L.add(timeseries("OTLP export", "ops", targets(
        (f"sum(rate(pgvigil_spans_exported_total{sel()}[{RATE}]))", "exported"),
        (f"sum by (reason) (rate(pgvigil_spans_dropped_total{sel()}[{RATE}]))",
         "dropped {{reason}}"),
        (f"sum by (reason) (rate(pgvigil_span_export_errors_total{sel()}[{RATE}]))",
         "error {{reason}}"))), w=8)
    return dashboard("pgvigil-overview", "pgvigil / Overview",
                     "PostgreSQL / Neon health as seen by the pgvigil sidecar.", L.panels,
                     ["pgvigil", "postgresql", "neon"])


def top_with_text(metric):
    """The top 10 fingerprints of `metric`, labelled with their obfuscated text (one info series
    per fingerprint, whatever the number of pods), so legends read as queries, not hashes."""
    return (f"topk(10, max by (fingerprint) ({metric}{sel()})) * on (fingerprint) "
            f"group_left (query) max by (fingerprint, query) "
            f"(topk by (fingerprint) (1, pgvigil_top_statement_info{sel()}))")


def queries():
    L = Layout()
    L.row("Top statements")
    L.add(timeseries("Top statements by execution time", "s", targets(
        (top_with_text("pgvigil_top_statement_exec_seconds"), "{{query}}")),
        "Execution time per sampling interval of the top statements (sampling.top_n_labels, "
        "default 10); legends show the obfuscated text (pgvigil_top_statement_info)."), w=12)
    L.add(timeseries("Top statements by calls", "short", targets(
        (top_with_text("pgvigil_top_statement_calls"), "{{query}}")),
        "Calls per sampling interval of the top statements; legends show the obfuscated "
        "text."), w=12)
    L.add(timeseries("Statement mean time percentiles", "s",
                     targets(*quantiles("pgvigil_statement_mean_seconds", (0.5, 0.95, 0.99)))),
          w=12)
    L.add(timeseries("Execution time per second", "s", targets(
        (f"sum by ({BY}) (rate(pgvigil_statements_exec_seconds_total{sel()}[{RATE}]))",
         "{{pod}}")), "Seconds of statement execution per wall-clock second."), w=12)
    L.add(timeseries("Calls and rows", "ops", targets(
        (f"sum(rate(pgvigil_statements_calls_total{sel()}[{RATE}]))", "calls/s"),
        (f"sum(rate(pgvigil_statements_rows_total{sel()}[{RATE}]))", "rows/s"))), w=12)

    L.row("Long-running")
    L.add(timeseries("Long-running queries", "short", targets(
        (f"max by ({BY}) (pgvigil_long_running_queries{sel()})", "{{pod}}"))), w=8)
    L.add(timeseries("Longest running query", "s", targets(
        (f"max by ({BY}) (pgvigil_long_running_max_seconds{sel()})", "{{pod}}"))), w=8)
    L.add(timeseries("Longest transaction by state", "s", targets(
        (f"max by (state) (pg_stat_activity_max_tx_duration{sel()})", "{{state}}"))), w=8)

    L.row("pg_stat_statements")
    L.add(stat("pg_stat_statements available", "bool_yes_no", [target(
        f"max by ({BY}) (pgvigil_pg_stat_statements_available{sel()})", "{{pod}}")],
        thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                  {"color": "green", "value": 1}]}), w=6)
    L.add(timeseries("Entries vs pg_stat_statements.max", "short", targets(
        (f"max by ({BY}) (pgvigil_pg_stat_statements_entries{sel()})", "entries {{pod}}"),
        (f"max by ({BY}) (pgvigil_pg_stat_statements_max{sel()})", "max {{pod}}"))), w=9)
    L.add(timeseries("Deallocations (evictions)", "short", targets(
        (f"sum by ({BY}) (increase(pgvigil_pg_stat_statements_dealloc_total{sel()}[{RATE}]))",
         "{{pod}}")), "Times pg_stat_statements evicted entries; raise "
        "pg_stat_statements.max if this keeps growing."), w=9)
    L.add(timeseries("Sampler age", "s", targets(
        (f"time() - max by (collector) (pgvigil_collector_last_success_timestamp_seconds"
         f"{SAMPLERS} > 0)", "{{collector}}"))), w=12)
    L.add(timeseries("Sampler errors", "ops", targets(
        (f"sum by (collector) (rate(pgvigil_collector_errors_total"
         f"{SAMPLERS}[{RATE}]))", "{{collector}}"))), w=12)
    return dashboard("pgvigil-queries", "pgvigil / Queries",
                     "Slow-query view: pg_stat_statements deltas and long-running backends.",
                     L.panels, ["pgvigil", "postgresql"])


def main():
    os.makedirs(HELM_COPY, exist_ok=True)
    for name, d in (("pgvigil-overview.json", overview()), ("pgvigil-queries.json", queries())):
        text = json.dumps(d, indent=2) + "\n"
        for path in (os.path.join(HERE, name), os.path.join(HELM_COPY, name)):
            with open(path, "w") as f:
                f.write(text)
            print("wrote", os.path.relpath(path, os.path.join(HERE, "..")))


if __name__ == "__main__":
    main()
