#!/usr/bin/env python3
"""Writes pgvigil-overview.json and pgvigil-queries.json (standard Grafana dashboard JSON), and
the Helm chart's copies of them and of the alert rules.

The JSON files are the artifacts (import them, or provision them with provisioning/); this script
is how they are kept consistent: one selector, a datasource variable instead of any fixed uid,
a unit on every panel. Edit here, run `python3 dashboards/generate.py`, commit both.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
# The Helm chart ships identical copies (Helm cannot read files outside the chart);
# tests/dashboards/test_dashboards.py checks they match and that this script reproduces both.
HELM_COPY = os.path.join(HERE, "..", "helm", "pgvigil", "files", "dashboards")
# Every query is scoped to pgvigil's job(s): the `job` variable lists the jobs that have
# pgvigil_build_info, and its "All" is that list (never ".*"), so other exporters' pg_* series and
# Prometheus' own process_* series never enter a panel.
JOB = 'job=~"$job"'
# Per-pod panels (probe, pool, process): one series per sidecar.
SEL = JOB + ', namespace=~"$namespace", pod=~"$pod", instance=~"$instance"'
BY = "job, namespace, pod, instance"
# Legends that read in Kubernetes (pod) and outside it (instance = host:port).
POD = "{{pod}} {{instance}}"
# Database-wide panels: only the elected stats leader exports pg_* series (stats.election), and
# when several sidecars do (election off, behind a pooler) they report the same figures: take one
# per database with max by (...), never a sum across sidecars. Not filtered by pod/instance: the
# database is the same whichever sidecar reports it.
DBSEL = JOB + ', namespace=~"$namespace"'
DATNAME = 'datname=~"$datname"'
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def sel(extra=""):
    return "{" + SEL + (", " + extra if extra else "") + "}"


def dbsel(extra=""):
    return "{" + DBSEL + (", " + extra if extra else "") + "}"


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


def timeseries(title, unit, tgts, description, stack=False, minv=None, maxv=None):
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


GREEN_IF_1 = {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                            {"color": "green", "value": 1}]}


def stat(title, unit, tgts, description, mappings=None, thresholds=None):
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
    """Encodes a one-hot gauge family as a single number per sidecar (see value_mappings)."""
    parts = []
    for code, name, _ in states:
        selector = sel('state="%s"' % name)
        parts.append(f"(sum by ({BY}) ({metric}{selector}) * {code})")
    return " + ".join(parts)


def state_timeline(title, expr, states, description):
    defaults = {"unit": "none", "mappings": value_mappings(states),
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "text", "value": None}]}}
    return {"type": "state-timeline", "title": title, "description": description, "datasource": DS,
            "targets": [target(expr, POD)],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"showValue": "auto", "mergeValues": True, "rowHeight": 0.9,
                        "legend": {"displayMode": "list", "placement": "bottom"}}}


def heatmap(title, expr, unit, description):
    return {"type": "heatmap", "title": title, "description": description, "datasource": DS,
            "targets": [target(expr, "{{le}}", fmt="heatmap")],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"calculate": False, "yAxis": {"unit": unit},
                        "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"},
                        "tooltip": {"show": True, "yHistogram": True}}}


def quantiles(metric, qs=(0.5, 0.9, 0.99)):
    """Per-sidecar percentiles of a pgvigil histogram."""
    return [(f"histogram_quantile({q}, sum by ({BY}, le) "
             f"(rate({metric}_bucket{sel()}[{RATE}])))", f"p{int(q * 100)} {POD}")
            for q in qs]


def variables():
    def query_var(name, label, query, all_value=".*"):
        v = {"name": name, "label": label, "type": "query", "datasource": DS,
             "query": {"query": query, "refId": name}, "definition": query,
             "refresh": 2, "includeAll": True, "multi": True, "allValue": all_value,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
             "sort": 1, "hide": 0}
        return v
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": ""},
        # No allValue: "All" is the list of pgvigil's jobs, so nothing else is ever selected.
        query_var("job", "Job", "label_values(pgvigil_build_info, job)", all_value=None),
        query_var("namespace", "Namespace",
                  'label_values(pgvigil_build_info{job=~"$job"}, namespace)'),
        query_var("pod", "Pod",
                  'label_values(pgvigil_build_info{job=~"$job", namespace=~"$namespace"}, pod)'),
        query_var("instance", "Instance",
                  'label_values(pgvigil_build_info{job=~"$job", namespace=~"$namespace", '
                  'pod=~"$pod"}, instance)'),
        query_var("datname", "Database",
                  'label_values(pg_stat_database_numbackends{job=~"$job", '
                  'namespace=~"$namespace"}, datname)'),
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
POLICY_STATES = [(0, "active", "green"), (1, "going_idle", "yellow"), (2, "idle", "purple"),
                 (3, "waking", "orange")]
# Rows whose panels have data only on Neon (tests/dashboards accept them empty elsewhere).
NEON_ROWS = ("Neon",)
LEADER_NOTE = (" Database-wide: reported by the elected stats leader only (stats.election), one "
               "value per database (max across sidecars), never summed across sidecars.")


def db_rate(metric, extra=DATNAME):
    """Per-database rate of a server counter, taken once whatever the number of sidecars."""
    return f"max by (datname) (rate({metric}{dbsel(extra)}[{RATE}]))"


def overview():
    L = Layout()
    L.row("Health")
    L.add(state_timeline("Database state", one_hot_expr("pgvigil_db_state", DB_STATES),
                         DB_STATES, "pgvigil's view of the database (probe + Neon API), one "
                         "line per sidecar."), w=12, h=6)
    L.add(stat("Database usable (/health/db)", "bool_yes_no",
               [target(f"max by ({BY}) (pgvigil_db_state{USABLE})", POD)],
               "1 while the state is up, degraded or idle: what /health/db answers, per sidecar.",
               thresholds=GREEN_IF_1), w=4, h=6)
    L.add(stat("Last probe ok (pg_up)", "bool_yes_no", [target(f"pg_up{sel()}", POD)],
               "1 when the sidecar's last SELECT 1 probe succeeded (postgres_exporter's pg_up).",
               thresholds=GREEN_IF_1), w=4, h=6)
    L.add(stat("Stats leader", "bool_yes_no", [target(f"pgvigil_stats_leader{sel()}", POD)],
               "1 on the sidecar that runs the database-wide collectors and the samplers "
               "(elected per database with an advisory lock; every sidecar when stats.election "
               "= off or behind a pooler). /health shows the role and why.",
               thresholds={"mode": "absolute", "steps": [{"color": "text", "value": None},
                                                         {"color": "green", "value": 1}]}),
          w=4, h=6)
    L.add(timeseries("Probe latency percentiles", "s",
                     targets(*quantiles("pgvigil_probe_duration_seconds")),
                     "Latency of successful SELECT 1 probes, per sidecar."))
    L.add(heatmap("Probe latency heatmap",
                  f"sum by (le) (increase(pgvigil_probe_duration_seconds_bucket{sel()}[{RATE}]))",
                  "s", "Distribution of probe latencies, all selected sidecars together."))
    L.add(timeseries("Probe outcomes", "ops", targets(
        (f"sum by (outcome) (rate(pgvigil_probes_total{sel()}[{RATE}]))", "{{outcome}}")),
        "Probes per second by outcome (ok or the error kind), selected sidecars together.",
        stack=True))
    L.add(timeseries("State changes", "short", targets(
        (f"sum by ({BY}) (increase(pgvigil_state_changes_total{sel()}[{RATE}]))", POD)),
        "Database state transitions seen by each sidecar; many mean flapping."))

    L.row("Neon")
    L.add(state_timeline("Suspend policy state",
                         one_hot_expr("pgvigil_suspend_policy_state", POLICY_STATES),
                         POLICY_STATES, "neon.idle_policy at work: active (probing), going_idle "
                         "(stopped querying so the compute may suspend), idle, waking."),
          w=12, h=6)
    L.add(state_timeline("Neon compute state",
                         one_hot_expr("pgvigil_neon_compute_state", COMPUTE_STATES),
                         COMPUTE_STATES, "current_state from the Neon API."), w=12, h=6)
    L.add(timeseries("Wakes", "short", targets(
        (f"max by (by) (increase(pgvigil_neon_wakes_total{sel()}[{RATE}]))", "by {{by}}")),
        "Compute wakes seen through the Neon API: by=pgvigil when pgvigil's own connect woke "
        "it, by=other for an application. One compute: the max across sidecars."), w=8, h=6)
    L.add(timeseries("Cold starts", "short", targets(
        (f"sum by ({BY}) (increase(pgvigil_cold_starts_total{sel()}[{RATE}]))", POD)),
        "Connects of each sidecar that found the compute asleep (measured cold starts)."),
        w=8, h=6)
    L.add(timeseries("Cold start duration", "s",
                     targets(*quantiles("pgvigil_cold_start_duration_seconds", (0.5, 0.95))),
                     "How long waking the compute took on pgvigil's connects."), w=8, h=6)

    L.row("Connection pool")
    L.add(timeseries("Pool connections", "short", targets(
        (f"sum by ({BY}, pool, state) (pgvigil_pool_connections{sel()})",
         "{{pool}} {{state}} " + POD),
        (f"sum by ({BY}, pool) (pgvigil_pool_max_connections{sel()})", "{{pool}} max " + POD)),
        "pgvigil's own connections to the database, per sidecar and pool (main; sampling when "
        "neon.sampling_url is set): idle, busy and the pool's size."), w=8)
    L.add(timeseries("Pool churn", "ops", targets(
        (f"sum by ({BY}, pool) (rate(pgvigil_pool_connections_opened_total{sel()}[{RATE}]))",
         "{{pool}} opened " + POD),
        (f"sum by ({BY}, pool, reason) "
         f"(rate(pgvigil_pool_connections_closed_total{sel()}[{RATE}]))",
         "{{pool}} closed {{reason}} " + POD),
        (f"sum by ({BY}, pool, reason) (rate(pgvigil_pool_connect_errors_total{sel()}[{RATE}]))",
         "{{pool}} connect error {{reason}} " + POD)),
        "Connections opened and closed per second by each sidecar and pool, and failed connects."), w=8)
    L.add(timeseries("Connect latency", "s",
                     targets(*quantiles("pgvigil_connect_duration_seconds", (0.5, 0.99))),
                     "Time to open a connection (TCP, TLS, authentication), per sidecar."), w=8)

    L.row("Database")
    L.add(timeseries("Connections vs max_connections", "short", targets(
        (f"sum(max by (datname) (pg_stat_database_numbackends{dbsel(DATNAME)}))", "backends"),
        (f"max(pg_settings_max_connections{dbsel()})", "max_connections"),
        (f"max by (state) (sum by (job, instance, state) "
         f"(pg_stat_activity_count{dbsel(DATNAME)}))", "{{state}}")),
        "Backends connected to the selected databases (pg_stat_database.numbackends) against "
        "max_connections, and client sessions by state (pg_stat_activity)." + LEADER_NOTE),
        w=8)
    L.add(timeseries("Transactions", "ops", targets(
        (db_rate("pg_stat_database_xact_commit"), "commit {{datname}}"),
        (db_rate("pg_stat_database_xact_rollback"), "rollback {{datname}}")),
        "Transactions committed and rolled back per second, per database." + LEADER_NOTE), w=8)
    L.add(timeseries("Cache hit ratio", "percentunit", targets(
        (f"{db_rate('pg_stat_database_blks_hit')} / ({db_rate('pg_stat_database_blks_hit')} + "
         f"{db_rate('pg_stat_database_blks_read')} > 0)", "{{datname}}")),
        "Shared buffer hits / (hits + reads), per database; empty while nothing is read."
        + LEADER_NOTE, minv=0, maxv=1), w=8)
    L.add(timeseries("Tuples", "ops", targets(
        (db_rate("pg_stat_database_tup_returned"), "returned {{datname}}"),
        (db_rate("pg_stat_database_tup_fetched"), "fetched {{datname}}"),
        (db_rate("pg_stat_database_tup_inserted"), "inserted {{datname}}"),
        (db_rate("pg_stat_database_tup_updated"), "updated {{datname}}"),
        (db_rate("pg_stat_database_tup_deleted"), "deleted {{datname}}")),
        "Rows returned, fetched, inserted, updated and deleted per second, per database."
        + LEADER_NOTE), w=8)
    L.add(timeseries("Deadlocks and conflicts", "short", targets(
        (f"max by (datname) (increase(pg_stat_database_deadlocks{dbsel(DATNAME)}[{RATE}]))",
         "deadlocks {{datname}}"),
        (f"max by (datname) (increase(pg_stat_database_conflicts{dbsel(DATNAME)}[{RATE}]))",
         "recovery conflicts {{datname}}")),
        "Deadlocks detected and queries cancelled by recovery conflicts, per database."
        + LEADER_NOTE), w=8)
    L.add(timeseries("Temporary files", "Bps", targets(
        (db_rate("pg_stat_database_temp_bytes"), "bytes {{datname}}")),
        "Bytes per second written to temporary files (work_mem too small for sorts and "
        "hashes), per database." + LEADER_NOTE), w=8)
    L.add(timeseries("Temporary files created", "ops", targets(
        (db_rate("pg_stat_database_temp_files"), "files {{datname}}")),
        "Temporary files created per second, per database." + LEADER_NOTE), w=8)
    L.add(timeseries("Database size", "bytes", targets(
        (f"max by (datname) (pg_database_size_bytes{dbsel(DATNAME)})", "{{datname}}")),
        "Disk space used by each database." + LEADER_NOTE), w=8)
    L.add(timeseries("Locks", "short", targets(
        (f"max by (mode) (sum by (job, instance, mode) (pg_locks_count{dbsel(DATNAME)}))",
         "{{mode}}")),
        "Locks held in the selected databases, by mode." + LEADER_NOTE, stack=True), w=8)
    L.add(timeseries("Longest transaction", "s", targets(
        (f"max by (datname, state) (pg_stat_activity_max_tx_duration{dbsel(DATNAME)})",
         "{{datname}} {{state}}")),
        "Age of the oldest open transaction, by database and session state." + LEADER_NOTE),
        w=8)
    L.add(timeseries("Checkpoints", "ops", targets(
        (f"max(rate(pg_stat_bgwriter_checkpoints_timed_total{dbsel()}[{RATE}]))", "timed"),
        (f"max(rate(pg_stat_bgwriter_checkpoints_req_total{dbsel()}[{RATE}]))", "requested")),
        "Checkpoints per second: scheduled (checkpoint_timeout) and requested (max_wal_size "
        "reached, CHECKPOINT). Many requested ones: raise max_wal_size. PostgreSQL < 17."
        + LEADER_NOTE), w=8)
    L.add(timeseries("Buffers written", "ops", targets(
        (f"max(rate(pg_stat_bgwriter_buffers_checkpoint_total{dbsel()}[{RATE}]))",
         "checkpoint"),
        (f"max(rate(pg_stat_bgwriter_buffers_clean_total{dbsel()}[{RATE}]))",
         "background writer"),
        (f"max(rate(pg_stat_bgwriter_buffers_backend_total{dbsel()}[{RATE}]))", "backends"),
        (f"max(rate(pg_stat_bgwriter_buffers_alloc_total{dbsel()}[{RATE}]))", "allocated")),
        "Shared buffers written per second by checkpoints, the background writer and backends "
        "themselves, and buffers allocated (pg_stat_bgwriter)." + LEADER_NOTE), w=8)
    L.add(timeseries("Replication lag", "s", targets(
        (f"max(pg_replication_lag_seconds{dbsel()})", "lag"),
        (f"max(pg_replication_is_replica{dbsel()})", "is replica")),
        "Seconds the replica's replay is behind (0 on a primary) and whether the server is a "
        "replica (1) or a primary (0)." + LEADER_NOTE), w=8)
    L.add(stat("Server uptime", "s", [target(
        f"time() - max(pg_postmaster_start_time_seconds{dbsel()})", "uptime")],
        "Time since the postmaster started (a Neon compute restarts on every wake)."
        + LEADER_NOTE), w=4, h=4)
    L.add(stat("max_connections", "short", [target(
        f"max(pg_settings_max_connections{dbsel()})", "max_connections")],
        "The server's max_connections setting." + LEADER_NOTE), w=4, h=4)
    L.add(stat("shared_buffers", "bytes", [target(
        f"max(pg_settings_shared_buffers_bytes{dbsel()})", "shared_buffers")],
        "The server's shared_buffers setting." + LEADER_NOTE), w=4, h=4)
    L.add(stat("work_mem", "bytes", [target(
        f"max(pg_settings_work_mem_bytes{dbsel()})", "work_mem")],
        "The server's work_mem setting (per sort or hash)." + LEADER_NOTE), w=4, h=4)
    L.add(stat("effective_cache_size", "bytes", [target(
        f"max(pg_settings_effective_cache_size_bytes{dbsel()})", "effective_cache_size")],
        "The planner's effective_cache_size setting." + LEADER_NOTE), w=4, h=4)
    L.add(stat("PostgreSQL version", "none", [target(
        f"max by (short_version) (pg_static{dbsel()})", "{{short_version}}")],
        "The server's version (pg_static{short_version}); the panel shows it in its legend."
        + LEADER_NOTE), w=4, h=4)

    L.row("Queries")
    L.add(timeseries("Slow / long-running queries", "short", targets(
        (f"max(pgvigil_long_running_queries{dbsel()})", "running")),
        "Backends running longer than the slow-query threshold (activity sampler)."
        + LEADER_NOTE), w=8)
    L.add(timeseries("Longest running query", "s", targets(
        (f"max(pgvigil_long_running_max_seconds{dbsel()})", "longest")),
        "Duration of the longest query running now (activity sampler)." + LEADER_NOTE), w=8)
    L.add(timeseries("Statement totals", "ops", targets(
        (f"max(rate(pgvigil_statements_calls_total{dbsel()}[{RATE}]))", "calls/s"),
        (f"max(rate(pgvigil_statements_rows_total{dbsel()}[{RATE}]))", "rows/s")),
        "Statements and rows per second from pg_stat_statements deltas (server-wide). Only the "
        "stats leader's counters grow (a former leader's stay flat); max across sidecars, so "
        "each statement counts once even when several collect (election off, a pooler, or "
        "leaders of other databases on the same server)."), w=8)

    L.row("pgvigil")
    L.add(timeseries("Collector age", "s", targets(
        (f"time() - max by (collector) "
         f"(pgvigil_collector_last_success_timestamp_seconds{sel()} > 0)", "{{collector}}")),
        "Seconds since each collector last succeeded on any selected sidecar (the leader's "
        "keeps low; followers do not collect)."), w=8)
    L.add(timeseries("Collector errors", "ops", targets(
        (f"sum by ({BY}, collector) (rate(pgvigil_collector_errors_total{sel()}[{RATE}]))",
         "{{collector}} " + POD)),
        "Failed collector runs per second, per sidecar; a failing collector's pg_* series "
        "disappear until it works again."), w=8)
    L.add(timeseries("Collector duration", "s", targets(
        (f"max by (collector) (pgvigil_collector_duration_seconds{sel()})", "{{collector}}")),
        "How long each collector's last run took (slowest sidecar)."), w=8)
    L.add(timeseries("pgvigil CPU", "percentunit", targets(
        (f"rate(process_cpu_seconds_total{sel()}[{RATE}])", POD)),
        "CPU used by each pgvigil process (1 = one core)."), w=8)
    L.add(timeseries("pgvigil memory (RSS)", "bytes", targets(
        (f"process_resident_memory_bytes{sel()}", POD)),
        "Resident memory of each pgvigil process."), w=8)
    L.add(timeseries("OTLP export", "ops", targets(
        (f"sum by ({BY}) (rate(pgvigil_spans_exported_total{sel()}[{RATE}]))",
         "exported " + POD),
        (f"sum by ({BY}, reason) (rate(pgvigil_spans_dropped_total{sel()}[{RATE}]))",
         "dropped {{reason}} " + POD),
        (f"sum by ({BY}, reason) (rate(pgvigil_span_export_errors_total{sel()}[{RATE}]))",
         "error {{reason}} " + POD)),
        "Spans exported, dropped and failed per second, per sidecar (0 with tracing off)."),
        w=8)
    return dashboard("pgvigil-overview", "pgvigil / Overview",
                     "PostgreSQL / Neon health as seen by the pgvigil sidecars: per-pod probe, "
                     "pool and process panels; database-wide panels counted once per database.",
                     L.panels, ["pgvigil", "postgresql", "neon"])


def top_with_text(metric):
    """The top 10 fingerprints of `metric`, labelled with their obfuscated text (one info series
    per fingerprint, whatever the number of sidecars), so legends read as queries, not hashes."""
    return (f"topk(10, max by (fingerprint) ({metric}{dbsel()})) * on (fingerprint) "
            f"group_left (query) max by (fingerprint, query) "
            f"(topk by (fingerprint) (1, pgvigil_top_statement_info{dbsel()}))")


def queries():
    L = Layout()
    L.row("Top statements")
    L.add(timeseries("Top statements by execution time", "s", targets(
        (top_with_text("pgvigil_top_statement_exec_seconds"), "{{query}}")),
        "Execution time per sampling interval of the top statements (sampling.top_n_labels, "
        "default 10); legends show the obfuscated text (pgvigil_top_statement_info)."
        + LEADER_NOTE), w=12)
    L.add(timeseries("Top statements by calls", "short", targets(
        (top_with_text("pgvigil_top_statement_calls"), "{{query}}")),
        "Calls per sampling interval of the top statements; legends show the obfuscated "
        "text." + LEADER_NOTE), w=12)
    L.add(timeseries("Statement mean time percentiles", "s", targets(*[
        (f"histogram_quantile({q}, sum by (le) "
         f"(rate(pgvigil_statement_mean_seconds_bucket{dbsel()}[{RATE}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)]),
        "Percentiles of the mean time per call of the statements that ran in each sampling "
        "interval (only the stats leader observes them)."), w=12)
    L.add(timeseries("Execution time per second", "s", targets(
        (f"max(rate(pgvigil_statements_exec_seconds_total{dbsel()}[{RATE}]))", "exec time")),
        "Seconds of statement execution per wall-clock second (pg_stat_statements deltas, "
        "server-wide; max across sidecars: each statement counts once)."), w=12)
    L.add(timeseries("Calls and rows", "ops", targets(
        (f"max(rate(pgvigil_statements_calls_total{dbsel()}[{RATE}]))", "calls/s"),
        (f"max(rate(pgvigil_statements_rows_total{dbsel()}[{RATE}]))", "rows/s")),
        "Statements and rows per second (pg_stat_statements deltas, server-wide; max across "
        "sidecars: counted once)."), w=12)

    L.row("Long-running")
    L.add(timeseries("Long-running queries", "short", targets(
        (f"max(pgvigil_long_running_queries{dbsel()})", "running")),
        "Backends running longer than the slow-query threshold." + LEADER_NOTE), w=8)
    L.add(timeseries("Longest running query", "s", targets(
        (f"max(pgvigil_long_running_max_seconds{dbsel()})", "longest")),
        "Duration of the longest query running now." + LEADER_NOTE), w=8)
    L.add(timeseries("Longest transaction by state", "s", targets(
        (f"max by (state) (pg_stat_activity_max_tx_duration{dbsel(DATNAME)})", "{{state}}")),
        "Age of the oldest open transaction by session state." + LEADER_NOTE), w=8)

    L.row("pg_stat_statements")
    L.add(stat("pg_stat_statements available", "bool_yes_no", [target(
        f"max(pgvigil_pg_stat_statements_available{dbsel()})", "available")],
        "1 when the pg_stat_statements extension is usable by pgvigil's role.",
        thresholds=GREEN_IF_1), w=6)
    L.add(timeseries("Entries vs pg_stat_statements.max", "short", targets(
        (f"max(pgvigil_pg_stat_statements_entries{dbsel()})", "entries"),
        (f"max(pgvigil_pg_stat_statements_max{dbsel()})", "max")),
        "Statements tracked against pg_stat_statements.max; at the max, entries get evicted."),
        w=9)
    L.add(timeseries("Deallocations (evictions)", "short", targets(
        (f"max(increase(pgvigil_pg_stat_statements_dealloc_total{dbsel()}[{RATE}]))",
         "evictions")), "Times pg_stat_statements evicted entries; raise "
        "pg_stat_statements.max if this keeps growing."), w=9)
    L.add(timeseries("Sampler age", "s", targets(
        (f"time() - max by (collector) (pgvigil_collector_last_success_timestamp_seconds"
         f"{SAMPLERS} > 0)", "{{collector}}")),
        "Seconds since the statement and activity samplers last succeeded on any selected "
        "sidecar."), w=12)
    L.add(timeseries("Sampler errors", "ops", targets(
        (f"sum by ({BY}, collector) (rate(pgvigil_collector_errors_total"
         f"{SAMPLERS}[{RATE}]))", "{{collector}} " + POD)),
        "Failed sampler runs per second, per sidecar."), w=12)
    return dashboard("pgvigil-queries", "pgvigil / Queries",
                     "Slow-query view: pg_stat_statements deltas and long-running backends, "
                     "from the elected stats leader.", L.panels, ["pgvigil", "postgresql"])


RULES = os.path.join(HERE, "alerts", "pgvigil-alerts.yaml")
HELM_RULES = os.path.join(HERE, "..", "helm", "pgvigil", "files", "alerts.yaml")
HELM_RULES_HEADER = """\
# pgvigil alert rules: a plain Prometheus rule file (check with `promtool check rules`), also
# rendered into the chart's PrometheusRule (prometheusRule.enabled, runbook_url base from
# prometheusRule.runbookBaseUrl). Written by dashboards/generate.py from
# dashboards/alerts/pgvigil-alerts.yaml (unit-tested there with `promtool test rules`): edit that
# file and run the script. Each alert has a section in docs/runbook.md (runbook_url).
"""


def render():
    """{path relative to the repository: text}: everything main() writes; the test compares it
    with the committed files byte for byte."""
    out = {}
    for name, d in (("pgvigil-overview.json", overview()), ("pgvigil-queries.json", queries())):
        text = json.dumps(d, indent=2) + "\n"
        out[os.path.join("dashboards", name)] = text
        out[os.path.join("helm", "pgvigil", "files", "dashboards", name)] = text
    rules = open(RULES).read()
    out[os.path.join("helm", "pgvigil", "files", "alerts.yaml")] = (
        HELM_RULES_HEADER + rules[rules.index("groups:"):])
    return out


def main():
    os.makedirs(HELM_COPY, exist_ok=True)
    root = os.path.join(HERE, "..")
    for rel, text in render().items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
        print("wrote", rel)


if __name__ == "__main__":
    main()
