#!/usr/bin/env python3
"""Tests for helm/pgvigil: helm lint --strict, helm template across modes and value
combinations with assertions on the rendered objects, schema and template rejections of bad
values, the chart used as a dependency of an app chart, and kubectl client-side dry runs.

Needs helm and kubectl on PATH (tests/helm/test_chart.sh fetches them) and python3-yaml.
Prints one line per test and a final "N passed, M failed"; exits non-zero on any failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import traceback

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHART = os.path.join(REPO, "helm", "pgvigil")
APP_CHART = os.path.join(HERE, "app-chart")
REFERENCE_TOML = os.path.join(REPO, "config", "pgvigil.toml")

# pgvigil's HTTP endpoints (agent/http/server.hpp); every probe path must be one of them.
ENDPOINTS = {"/livez", "/startupz", "/readyz", "/health", "/health/db", "/metrics",
             "/queries", "/traces"}

TMP = tempfile.mkdtemp(prefix="pgvigil-helm-test-")


# --- helpers ---------------------------------------------------------------------------------

def run(args, check=False):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def values_file(data):
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=TMP)
    with os.fdopen(fd, "w") as f:
        if isinstance(data, str):
            f.write(data)
        else:
            yaml.safe_dump(data, f)
    return path


def template_raw(values=None, sets=(), chart=CHART, extra=()):
    args = ["helm", "template", "rel", chart, "--namespace", "ns"]
    if values is not None:
        args += ["-f", values_file(values)]
    for s in sets:
        args += ["--set", s]
    return run(args + list(extra))


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (a lenient parser keeps one of them,
    which one depends on the parser: the API server and kubectl disagree)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise AssertionError(f"duplicate YAML key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def render(values=None, sets=(), chart=CHART, extra=()):
    proc = template_raw(values, sets, chart, extra)
    if proc.returncode != 0:
        raise AssertionError(f"helm template failed:\n{proc.stderr}")
    docs = [d for d in yaml.load_all(proc.stdout, Loader=UniqueKeyLoader) if d]
    return docs, proc.stdout


def rejected(values=None, sets=(), expect=None, extra=()):
    proc = template_raw(values, sets, extra=extra)
    assert proc.returncode != 0, f"expected rejection, got:\n{proc.stdout[:400]}"
    if expect:
        assert re.search(expect, proc.stderr), f"error lacks {expect!r}:\n{proc.stderr}"
    return proc.stderr


def kinds(docs):
    return sorted(d["kind"] for d in docs)


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}: {kinds(docs)}"
    return found[0]


def pod_spec(docs):
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def pgvigil_container(spec):
    found = [c for c in spec.get("initContainers") or [] if c["name"] == "pgvigil"]
    found += [c for c in spec.get("containers") or [] if c["name"] == "pgvigil"]
    assert len(found) == 1, f"expected one pgvigil container, got {len(found)}"
    return found[0]


def env_map(container):
    return {e["name"]: e for e in container.get("env") or []}


def parse_duration_ms(text):
    units = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    parts = re.findall(r"(\d+)(ms|d|h|m|s)", text)
    assert "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


def config_toml(docs):
    return tomllib.loads(one(docs, "ConfigMap")["data"]["pgvigil.toml"])


def normalize(section, key, value):
    if isinstance(value, str) and re.fullmatch(r"(\d+(ms|d|h|m|s))+", value):
        return parse_duration_ms(value)
    return value


def check_hardened(sc, where):
    assert sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
    assert sc.get("runAsUser", 1) != 0, f"{where}: runAsUser 0"
    assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
    assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
    assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities"
    assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccomp"


def check_probes(container, port):
    expected = {"startupProbe": "/startupz", "livenessProbe": "/livez",
                "readinessProbe": "/readyz"}
    ports = [p["containerPort"] for p in container["ports"]]
    assert ports == [port], f"containerPort {ports} != {port}"
    assert container["ports"][0]["name"] == "metrics"
    for probe, path in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["path"] in ENDPOINTS, f"{probe} path {get['path']}"
        assert get["port"] == port, f"{probe} port {get['port']} != {port}"
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 30, "liveness not generous"
    args = container["args"]
    assert args[args.index("--listen") + 1].endswith(f":{port}")
    assert args[args.index("--config") + 1] == "/etc/pgvigil/pgvigil.toml"


# --- tests -----------------------------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def lint_strict_defaults():
    run(["helm", "lint", "--strict", CHART], check=True)


@test
def lint_strict_classic_with_monitoring():
    path = values_file({"mode": "classic", "serviceMonitor": {"enabled": True},
                        "podMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                        "grafanaDashboards": {"enabled": True}, "appReadiness": {"enabled": True},
                        "neonApiKey": {"enabled": True, "existingSecret": "neon"}})
    run(["helm", "lint", "--strict", CHART, "-f", path], check=True)


@test
def default_render_objects():
    docs, text = render()
    assert kinds(docs) == ["ConfigMap", "Deployment", "Service"], kinds(docs)
    for d in docs:
        labels = d["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance",
                    "app.kubernetes.io/version", "app.kubernetes.io/managed-by",
                    "helm.sh/chart"):
            assert key in labels, f"{d['kind']} lacks label {key}"
        assert d["metadata"]["namespace"] == "ns"
    assert "postgres://" not in text and "postgresql://" not in text


@test
def native_sidecar_shape():
    docs, _ = render()
    spec = pod_spec(docs)
    init = spec["initContainers"]
    assert [c["name"] for c in init] == ["pgvigil"]
    assert init[0]["restartPolicy"] == "Always"
    assert "startupProbe" in init[0]
    assert "pgvigil" not in [c["name"] for c in spec["containers"]]
    check_probes(init[0], 9188)
    # The native sidecar mode needs Kubernetes >= 1.29.
    rejected(extra=["--kube-version", "1.28.0"], expect=r"mode native needs Kubernetes >= 1.29")


@test
def classic_sidecar_shape():
    docs, _ = render(sets=["mode=classic"], extra=["--kube-version", "1.27.0"])
    spec = pod_spec(docs)
    assert not spec.get("initContainers"), "classic mode has no initContainers"
    names = [c["name"] for c in spec["containers"]]
    assert names == ["app", "pgvigil"], names
    container = spec["containers"][1]
    assert "restartPolicy" not in container
    check_probes(container, 9188)


@test
def custom_port_everywhere():
    docs, _ = render(values={"config": {"settings": {"http": {"listen": "[::]:9300"}}},
                             "serviceMonitor": {"enabled": True},
                             "podMonitor": {"enabled": True}})
    spec = pod_spec(docs)
    check_probes(pgvigil_container(spec), 9300)
    svc = one(docs, "Service")["spec"]["ports"][0]
    assert (svc["port"], svc["targetPort"], svc["name"]) == (9300, 9300, "metrics")
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == "9300" and ann["prometheus.io/path"] == "/metrics"
    assert config_toml(docs)["http"]["listen"] == "[::]:9300"
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    assert one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


@test
def secrets_only_by_reference():
    docs, text = render(values={"database": {"existingSecret": "db", "existingSecretKey": "dsn"},
                                "neonApiKey": {"enabled": True, "existingSecret": "neon",
                                               "existingSecretKey": "key"}})
    env = env_map(pgvigil_container(pod_spec(docs)))
    assert env["PGVIGIL_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "dsn"}
    assert env["NEON_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "neon", "key": "key"}
    assert all("value" not in e for e in env.values()), "plain env values"
    assert not [d for d in docs if d["kind"] == "Secret"]
    toml = config_toml(docs)
    assert "url" not in toml["database"]
    # The env names follow url_env / api_key_env.
    docs, _ = render(values={"neonApiKey": {"enabled": True, "existingSecret": "neon"},
                             "config": {"settings": {"database": {"url_env": "APP_DB"},
                                                     "neon": {"api_key_env": "MY_NEON"}}}})
    env = env_map(pgvigil_container(pod_spec(docs)))
    assert set(env) == {"APP_DB", "MY_NEON"}, set(env)
    assert config_toml(docs)["database"]["url_env"] == "APP_DB"


@test
def plaintext_url_needs_explicit_flag():
    rejected(sets=["database.url=postgres://u:p@h/db"],
             expect=r"database.url is set but database.allowPlaintextUrl is false")
    rejected(sets=["database.allowPlaintextUrl=true"], expect=r"database/url|database.url")
    docs, _ = render(sets=["database.allowPlaintextUrl=true", "database.url=postgres://u:p@h/db"])
    secret = one(docs, "Secret")
    assert secret["stringData"]["url"] == "postgres://u:p@h/db"
    ref = env_map(pgvigil_container(pod_spec(docs)))["PGVIGIL_DATABASE_URL"]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "url"}
    assert "postgres://" not in one(docs, "ConfigMap")["data"]["pgvigil.toml"]


@test
def hardened_security_and_resources():
    for mode in ("native", "classic"):
        docs, _ = render(sets=[f"mode={mode}"])
        spec = pod_spec(docs)
        container = pgvigil_container(spec)
        check_hardened(container["securityContext"], f"{mode} pgvigil")
        for c in spec["containers"]:
            check_hardened(c["securityContext"], f"{mode} {c['name']}")
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        res = container["resources"]
        assert res["requests"] == {"cpu": "10m", "memory": "16Mi"}, res
        assert res["limits"] == {"cpu": "100m", "memory": "64Mi"}, res
        mounts = container["volumeMounts"]
        assert mounts == [{"name": "pgvigil-config", "mountPath": "/etc/pgvigil",
                           "readOnly": True}], mounts


@test
def grace_period_exceeds_shutdown_timeout():
    docs, _ = render()
    spec = pod_spec(docs)
    shutdown_ms = parse_duration_ms(config_toml(docs)["http"]["shutdown_timeout"])
    assert spec["terminationGracePeriodSeconds"] * 1000 > shutdown_ms
    rejected(sets=["terminationGracePeriodSeconds=5"], expect=r"must exceed")
    rejected(values={"terminationGracePeriodSeconds": 20,
                     "config": {"settings": {"http": {"shutdown_timeout": "1m"}}}},
             expect=r"must exceed")
    render(values={"terminationGracePeriodSeconds": 10,
                   "config": {"settings": {"http": {"shutdown_timeout": "9500ms"}}}})


@test
def config_defaults_match_reference_toml():
    with open(os.path.join(CHART, "values.yaml")) as f:
        settings = yaml.safe_load(f)["config"]["settings"]
    docs, _ = render()
    rendered = config_toml(docs)
    if not os.path.exists(REFERENCE_TOML):
        print("    (config/pgvigil.toml missing: compared against values.yaml only)")
        reference = None
    else:
        with open(REFERENCE_TOML, "rb") as f:
            reference = tomllib.load(f)
    for section, table in settings.items():
        for key, value in table.items():
            if isinstance(value, dict) or value in ("", None):
                assert key not in rendered[section] or isinstance(value, dict), \
                    f"{section}.{key}: empty value rendered"
                continue
            assert rendered[section][key] == value, f"{section}.{key}: rendered differs"
            assert type(rendered[section][key]) is type(value), f"{section}.{key}: type"
            if reference is not None:
                assert key in reference[section], f"{section}.{key} not in config/pgvigil.toml"
                assert normalize(section, key, reference[section][key]) == \
                    normalize(section, key, value), \
                    f"{section}.{key}: values.yaml {value!r} != reference {reference[section][key]!r}"
    if reference is not None:
        for section, table in reference.items():
            for key in table:
                if isinstance(table[key], dict):
                    continue
                assert key in settings[section], f"values.yaml lacks {section}.{key}"


@test
def config_rendering_types_and_tables():
    docs, _ = render(values={"config": {"settings": {
        "tracing": {"otlp_endpoint": "http://collector:4318/v1/traces", "sample_ratio": 0.25,
                    "headers": {"x-api-key": "env:OTLP_KEY", "X-Scope-OrgID": "team \"a\""}},
        "pool": {"size": 2, "max_lifetime": "2h"},
        "neon": {"mode": "off", "wake_check_interval": "1h", "project_id": "p-1"},
        "log": {"format": "json"}}}})
    toml = config_toml(docs)
    assert toml["tracing"]["sample_ratio"] == 0.25
    assert toml["tracing"]["headers"] == {"x-api-key": "env:OTLP_KEY",
                                          "X-Scope-OrgID": "team \"a\""}
    assert toml["pool"]["size"] == 2 and toml["pool"]["max_lifetime"] == "2h"
    assert toml["neon"]["mode"] == "off" and toml["neon"]["wake_check_interval"] == "1h"
    assert toml["neon"]["project_id"] == "p-1"
    docs, _ = render()
    assert isinstance(config_toml(docs)["tracing"]["sample_ratio"], float)
    # Large integers stay integers (Helm holds numbers as float64).
    docs, _ = render(sets=["config.settings.tracing.queue_spans=1000000"])
    assert config_toml(docs)["tracing"]["queue_spans"] == 1000000


@test
def config_checksum_and_annotations():
    docs, _ = render()
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    first = ann["checksum/pgvigil-config"]
    docs, _ = render(sets=["config.settings.probe.interval=20s"])
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["checksum/pgvigil-config"] != first, "checksum must follow the config"
    docs, _ = render(sets=["metrics.podAnnotations=false"])
    ann = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert not any(k.startswith("prometheus.io/") for k in ann)


@test
def existing_configmap():
    docs, _ = render(sets=["config.existingConfigMap=my-config",
                           "config.existingConfigMapKey=custom.toml",
                           "metrics.podAnnotations=false"])
    assert "ConfigMap" not in kinds(docs)
    spec = pod_spec(docs)
    vol = spec["volumes"][0]
    assert vol["configMap"] == {"name": "my-config",
                                "items": [{"key": "custom.toml", "path": "pgvigil.toml"}]}
    assert "annotations" not in one(docs, "Deployment")["spec"]["template"]["metadata"]
    check_probes(pgvigil_container(spec), 9188)


@test
def app_readiness_opt_in():
    docs, _ = render()
    app = pod_spec(docs)["containers"][0]
    assert "readinessProbe" not in app
    for mode in ("native", "classic"):
        docs, _ = render(sets=["appReadiness.enabled=true", f"mode={mode}"])
        spec = pod_spec(docs)
        app = [c for c in spec["containers"] if c["name"] == "app"][0]
        get = app["readinessProbe"]["httpGet"]
        assert get == {"path": "/health/db", "port": 9188}, get
        sidecar = pgvigil_container(spec)
        assert sidecar["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"


@test
def monitoring_resources():
    docs, _ = render(values={
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
        "podMonitor": {"enabled": True, "selector": {"app": "mine"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"},
                           "additionalGroups": [{"name": "extra", "rules": [
                               {"alert": "X", "expr": "vector(1)"}]}]}})
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prom"
    svc = one(docs, "Service")
    for k, v in sm["spec"]["selector"]["matchLabels"].items():
        assert svc["metadata"]["labels"].get(k) == v, f"ServiceMonitor selector {k} misses"
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"] == {"app": "mine"}
    rule = one(docs, "PrometheusRule")
    with open(os.path.join(CHART, "files", "alerts.yaml")) as f:
        shipped = yaml.safe_load(f)["groups"]
    assert rule["spec"]["groups"][:-1] == shipped, "rules differ from files/alerts.yaml"
    assert rule["spec"]["groups"][-1]["name"] == "extra"
    alerts = {r["alert"]: r for g in shipped for r in g["rules"]}
    for name in ("PgvigilDatabaseDown", "PgvigilDatabaseMisconfigured",
                 "PgvigilProbeLatencyHigh", "PgvigilTargetMissing"):
        assert name in alerts, f"missing alert {name}"
    assert "for" in alerts["PgvigilDatabaseDown"]
    # Misconfiguration pages at once: no pending period.
    assert alerts["PgvigilDatabaseMisconfigured"].get("for", "0m") in ("0m", "0s"), \
        "PgvigilDatabaseMisconfigured must not wait"
    # runbook_url: absolute, on the repository's runbook by default, on runbookBaseUrl when set.
    for r in alerts.values():
        assert r["annotations"]["runbook_url"].startswith("https://") and \
            "/docs/runbook.md#" in r["annotations"]["runbook_url"], r["annotations"]
    docs, _ = render(values={"prometheusRule": {
        "enabled": True, "runbookBaseUrl": "https://wiki.example.com/ops/pgvigil/"}})
    urls = [r["annotations"]["runbook_url"]
            for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith("https://wiki.example.com/ops/pgvigil#pgvigil")
                        for u in urls), urls
    # The Service selector follows service.selector in app charts.
    docs, _ = render(values={"service": {"selector": {"app": "mine"}}})
    assert one(docs, "Service")["spec"]["selector"] == {"app": "mine"}
    docs, _ = render(sets=["service.enabled=false"])
    assert "Service" not in kinds(docs)
    rejected(sets=["service.enabled=false", "serviceMonitor.enabled=true"],
             expect=r"serviceMonitor.enabled needs service.enabled")


@test
def grafana_dashboards_configmap():
    docs, _ = render()
    assert not [d for d in docs if d["metadata"]["name"].endswith("-dashboards")], \
        "dashboards ConfigMap rendered although grafanaDashboards.enabled is false"
    docs, _ = render(values={"grafanaDashboards": {
        "enabled": True, "labels": {"team": "db"}, "annotations": {"grafana_folder": "pgvigil"}}})
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    cm = cms.get("rel-pgvigil-dashboards")
    assert cm is not None, f"no rel-pgvigil-dashboards ConfigMap: {sorted(cms)}"
    meta = cm["metadata"]
    assert meta["labels"].get("grafana_dashboard") == "1", meta["labels"]
    assert meta["labels"].get("team") == "db" and "app.kubernetes.io/name" in meta["labels"]
    assert meta["annotations"] == {"grafana_folder": "pgvigil"}, meta.get("annotations")
    assert meta["namespace"] == "ns"
    shipped = sorted(os.listdir(os.path.join(CHART, "files", "dashboards")))
    assert sorted(cm["data"]) == shipped == ["pgvigil-overview.json", "pgvigil-queries.json"], \
        sorted(cm["data"])
    for key, text in cm["data"].items():
        board = json.loads(text)
        with open(os.path.join(REPO, "dashboards", key)) as f:
            assert board == json.load(f), f"{key}: rendered JSON differs from dashboards/{key}"
        assert board["uid"] and board["panels"], f"{key}: not a dashboard"
    # The sidecar's label and the namespace are configurable (schema-checked).
    docs, _ = render(values={"grafanaDashboards": {
        "enabled": True, "label": "grafana.io/dashboard", "labelValue": "pgvigil",
        "namespace": "monitoring"}})
    cm = [d for d in docs if d["metadata"]["name"] == "rel-pgvigil-dashboards"][0]
    assert cm["metadata"]["labels"]["grafana.io/dashboard"] == "pgvigil"
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "monitoring"
    err = rejected(sets=["grafanaDashboards.enabled=true", "grafanaDashboards.lables.a=b"],
                   expect=r"additional properties 'lables' not allowed")
    assert "schema" in err
    rejected(sets=["grafanaDashboards.label=not a label"], expect=r"grafanaDashboards/label")


@test
def alerts_file_passes_promtool():
    if not shutil.which("promtool"):
        print("    (promtool not installed: skipped the promtool check)")
        return
    run(["promtool", "check", "rules", os.path.join(CHART, "files", "alerts.yaml")], check=True)


@test
def schema_rejects_bad_values():
    cases = [
        (["config.settings.log.level=verbose"], r"log/level"),
        (["config.settings.pool.sise=2"], r"additional properties 'sise' not allowed"),
        (["mode=sidecar"], r"/mode"),
        (["config.settings.pool.size=9"], r"pool/size"),
        (["config.settings.probe.interval=10"], r"probe/interval"),
        (["config.settings.probe.timeout=1.5s"], r"probe/timeout"),
        (["neonApiKey.enabled=true"], r"neonApiKey/existingSecret"),
        (["database.existingSecret="], r"database/existingSecret"),
        (["image.pullPolicy=Sometimes"], r"image/pullPolicy"),
        (["config.settings.neon.idle_policy=sleep"], r"neon/idle_policy"),
        (["unknownTopLevel=1"], r"unknownTopLevel"),
        (["config.settings.database.url=postgres://x"], r"additional properties 'url'"),
    ]
    for sets, expect in cases:
        err = rejected(sets=sets, expect=expect)
        assert "schema" in err, f"{sets}: not a schema error:\n{err}"
    # YAML 1.1 reads an unquoted off as a boolean: the schema says so instead of guessing.
    rejected(values="config:\n  settings:\n    neon:\n      mode: off\n", expect=r"neon/mode")


@test
def template_rejects_unsafe_values():
    rejected(sets=["config.settings.http.listen=127.0.0.1:9188"], expect=r"loopback-only")
    rejected(sets=["config.settings.neon.sampling_url=postgres://u:secret@direct/db"],
             expect=r"sampling_url contains a password")
    rejected(sets=["config.settings.http.listen=0.0.0.0"], expect=r"http/listen")


@test
def app_chart_includes_sidecar():
    work = os.path.join(TMP, "app-chart")
    shutil.copytree(APP_CHART, work)
    os.makedirs(os.path.join(work, "charts"), exist_ok=True)
    shutil.copytree(CHART, os.path.join(work, "charts", "pgvigil"))
    run(["helm", "lint", "--strict", work], check=True)
    for mode in ("native", "classic"):
        docs, _ = render(chart=work, sets=[f"pgvigil.mode={mode}"])
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        assert [d["metadata"]["name"] for d in deployments] == ["rel-myapp"], "demo not off"
        spec = deployments[0]["spec"]["template"]["spec"]
        sidecar = pgvigil_container(spec)
        where = "initContainers" if mode == "native" else "containers"
        assert sidecar in (spec.get(where) or []), f"{mode}: sidecar not in {where}"
        check_probes(sidecar, 9188)
        check_hardened(sidecar["securityContext"], "app chart pgvigil")
        assert sidecar["image"] == "localhost/pgvigil:0.1.0", sidecar["image"]
        ref = env_map(sidecar)["PGVIGIL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "myapp-db", "key": "url"}
        cm = one(docs, "ConfigMap")
        vol = [v for v in spec["volumes"] if v["name"] == "pgvigil-config"][0]
        assert vol["configMap"]["name"] == cm["metadata"]["name"]
        app = [c for c in spec["containers"] if c["name"] == "myapp"][0]
        assert app["readinessProbe"]["httpGet"] == {"path": "/health/db", "port": 9188}
        assert one(docs, "Service")["spec"]["selector"] == {"app.kubernetes.io/name": "myapp"}
        ann = deployments[0]["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/pgvigil-config" in ann and ann["prometheus.io/port"] == "9188"
    # As a dependency the dashboards come from the pgvigil chart's own files.
    docs, _ = render(chart=work, sets=["pgvigil.grafanaDashboards.enabled=true"])
    boards = [d for d in docs if d["metadata"]["name"].endswith("-dashboards")]
    assert len(boards) == 1 and sorted(boards[0]["data"]) == [
        "pgvigil-overview.json", "pgvigil-queries.json"], [d["metadata"]["name"] for d in docs]


@test
def kubectl_dry_run_accepts_output():
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_apiserver.py")],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        combos = [
            [],
            ["mode=classic"],
            ["serviceMonitor.enabled=true", "podMonitor.enabled=true",
             "prometheusRule.enabled=true", "appReadiness.enabled=true",
             "grafanaDashboards.enabled=true"],
            ["database.allowPlaintextUrl=true", "database.url=postgres://u:p@h/db",
             "neonApiKey.enabled=true", "neonApiKey.existingSecret=neon"],
            ["config.existingConfigMap=mine", "demo.enabled=false"],
        ]
        for sets in combos:
            docs, text = render(sets=sets)
            path = values_file(text)
            proc = run(["kubectl", "--server", f"http://127.0.0.1:{port}", "create",
                        "--dry-run=client", "--validate=false", "-o", "name", "-f", path])
            assert proc.returncode == 0, f"{sets}: kubectl rejected:\n{proc.stderr}"
            names = proc.stdout.split()
            assert len(names) == len(docs), f"{sets}: kubectl saw {names}, rendered {kinds(docs)}"
    finally:
        server.terminate()
        server.wait(timeout=10)


K8S_MODELS = os.environ.get("PGVIGIL_K8S_MODELS", "")


@test
def schema_definitions_are_generated():
    # values.schema.json's Kubernetes definitions are what scripts/gen-helm-schema.mjs writes
    # from the Kubernetes OpenAPI models; regenerating reproduces the committed file.
    assert K8S_MODELS, "PGVIGIL_K8S_MODELS unset (tests/helm/test_chart.sh sets it)"
    out = os.path.join(TMP, "values.schema.json")
    run(["node", os.path.join(REPO, "scripts", "gen-helm-schema.mjs"), K8S_MODELS,
         os.path.join(CHART, "values.schema.json"), out], check=True)
    with open(out) as f, open(os.path.join(CHART, "values.schema.json")) as g:
        assert f.read() == g.read(), \
            "values.schema.json differs from its regeneration: run scripts/gen-helm-schema.mjs"
    with open(out) as f:
        schema = json.load(f)
    props = schema["properties"]
    assert props["securityContext"] == {"$ref": "#/definitions/V1SecurityContext"} or \
        props["securityContext"].get("$ref") == "#/definitions/V1SecurityContext"
    assert schema["definitions"]["V1SecurityContext"]["additionalProperties"] is False
    assert schema["definitions"]["V1EnvVar"]["required"] == ["name"]


@test
def bad_values_refused_naming_the_key():
    # Each value Helm used to accept while Kubernetes (or Prometheus) refuses the output:
    # `helm template` must fail, and the message must name the key.
    cases = [
        (["securityContext.runAsNonroot=true"], r"securityContext.*runAsNonroot"),
        (["podSecurityContext.fsgroup=1"], r"podSecurityContext.*fsgroup"),
        (["demo.name=my.app"], r"demo/name"),
        (["demo.name=pgvigil"], r"demo\.name is \"pgvigil\""),
        (["nameOverride=PgVigil"], r"/nameOverride"),
        (["fullnameOverride=my_app"], r"/fullnameOverride"),
        (["grafanaDashboards.labelValue=a b"], r"grafanaDashboards/labelValue"),
        (["extraEnv[0].name=A", "extraEnv[0].vaule=b"], r"extraEnv/0.*vaule"),
        (["extraEnv[0].value=b"], r"extraEnv/0.*name"),
        (["demo.env[0].name=A", "demo.env[0].valueFrom.secretKeyRef.nmae=s"], r"secretKeyRef.*nmae"),
        (["tolerations[0].effct=NoSchedule"], r"tolerations/0.*effct"),
        (["affinity.nodeAfinity.x=1"], r"affinity.*nodeAfinity"),
        (["resources.limits.memroy=1Gi"], r"resources/limits.*memroy"),
        (["demo.resources.requests.cpu=lots"], r"demo/resources/requests/cpu"),
        (["demo.ports[0].containerPort=80", "demo.ports[0].protcol=TCP"], r"demo/ports/0.*protcol"),
        (["imagePullSecrets[0].nam=x"], r"imagePullSecrets/0.*nam"),
        (["podLabels.app\\.kubernetes\\.io/name=other"], r"podLabels\.app\.kubernetes\.io/name"),
        (["podLabels.app\\.kubernetes\\.io/instance=x"], r"podLabels\.app\.kubernetes\.io/instance"),
        (["serviceMonitor.enabled=true",
          "serviceMonitor.labels.app\\.kubernetes\\.io/name=x"],
         r"serviceMonitor\.labels\.app\.kubernetes\.io/name"),
        (["grafanaDashboards.enabled=true", "grafanaDashboards.labels.grafana_dashboard=0"],
         r"grafanaDashboards.labels.grafana_dashboard"),
        (["podLabels.bad key=x"], r"podLabels"),
        (["podLabels.team=a b"], r"podLabels/team"),
        (["podAnnotations.bad key=x"], r"podAnnotations"),
        (["nodeSelector.zone=a/b"], r"nodeSelector/zone"),
        (["serviceMonitor.enabled=true", "serviceMonitor.scrapeTimeout=40s"],
         r"serviceMonitor\.scrapeTimeout \(40s\) is longer than serviceMonitor\.interval \(30s\)"),
        (["podMonitor.enabled=true", "podMonitor.interval=1m", "podMonitor.scrapeTimeout=1m30s"],
         r"podMonitor\.scrapeTimeout"),
    ]
    for sets, expect in cases:
        proc = template_raw(sets=sets)
        assert proc.returncode != 0, f"{sets}: accepted"
        assert re.search(expect, proc.stderr), f"{sets}: message lacks {expect!r}:\n{proc.stderr}"


@test
def user_maps_merge_without_duplicate_keys():
    # Reusing the chart's own keys in a user map gives one key (render() refuses duplicates):
    # the user's value for plain labels and annotations, the chart's for selector labels.
    docs, text = render(values={
        "podLabels": {"app.kubernetes.io/name": "pgvigil", "app.kubernetes.io/part-of": "shop",
                      "team": "db"},
        "podAnnotations": {"prometheus.io/scrape": "false", "note": "x"},
        "serviceMonitor": {"enabled": True, "labels": {"app.kubernetes.io/part-of": "shop",
                                                       "release": "kps"}},
        "podMonitor": {"enabled": True, "labels": {"helm.sh/chart": "mine"}},
        "prometheusRule": {"enabled": True, "labels": {"app.kubernetes.io/instance": "rel"}},
        "grafanaDashboards": {"enabled": True, "labels": {"grafana_dashboard": "1", "t": "x"}},
    })
    dep = one(docs, "Deployment")
    tpl = dep["spec"]["template"]["metadata"]
    assert tpl["labels"]["app.kubernetes.io/part-of"] == "shop" and tpl["labels"]["team"] == "db"
    assert tpl["labels"]["app.kubernetes.io/name"] == "pgvigil"
    for k, v in dep["spec"]["selector"]["matchLabels"].items():
        assert tpl["labels"][k] == v
    assert tpl["annotations"]["prometheus.io/scrape"] == "false"
    assert tpl["annotations"]["prometheus.io/port"] == "9188" and tpl["annotations"]["note"] == "x"
    assert one(docs, "ServiceMonitor")["metadata"]["labels"]["release"] == "kps"
    assert one(docs, "PodMonitor")["metadata"]["labels"]["helm.sh/chart"] == "mine"
    assert text.count("prometheus.io/scrape") == 1


# Value sets rendered and validated object by object against the Kubernetes and
# prometheus-operator schemas (validate_k8s.mjs).
VALUE_SETS = {
    "defaults": {},
    "classic": {"mode": "classic"},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"},
                                      "interval": "1m", "scrapeTimeout": "1m",
                                      "relabelings": [{"sourceLabels": ["__meta_x"], "targetLabel": "x"}]},
                   "podMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s"},
                   "prometheusRule": {"enabled": True, "labels": {"release": "kps"}}},
    "dashboards": {"grafanaDashboards": {"enabled": True, "label": "grafana.io/dashboard",
                                         "labelValue": "pg-vigil_1.0", "namespace": "monitoring",
                                         "labels": {"team": "db"},
                                         "annotations": {"grafana_folder": "pgvigil"}}},
    "plaintext-url": {"database": {"allowPlaintextUrl": True, "url": "postgres://u:p@h/db"}},
    "neon": {"neonApiKey": {"enabled": True, "existingSecret": "neon"},
             "config": {"settings": {"neon": {"mode": "on", "project_id": "p"}}}},
    "existing-configmap": {"config": {"existingConfigMap": "mine"}},
    "no-demo": {"demo": {"enabled": False}, "serviceMonitor": {"enabled": True}},
    "app-readiness": {"appReadiness": {"enabled": True}, "demo": {"databaseUrlEnv": "DATABASE_URL"}},
    "overrides": {"nameOverride": "vigil", "fullnameOverride": "db-watch", "demo": {"name": "web"}},
    "scheduling": {"nodeSelector": {"kubernetes.io/os": "linux"},
                   "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db",
                                    "effect": "NoSchedule", "tolerationSeconds": 60}],
                   "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                       "nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
                       "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                           {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                             "labelSelector": {"matchLabels": {"a": "b"}}}}]}}},
    "env-and-ports": {"extraEnv": [{"name": "OTEL_TOKEN", "valueFrom": {"secretKeyRef": {"name": "otel", "key": "t"}}},
                                   {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                      "demo": {"env": [{"name": "A", "value": "1"}],
                               "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                               "command": ["/app"], "args": ["--x"]}},
    "security": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "readOnlyRootFilesystem": True,
                                     "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "podSecurityContext": {"fsGroup": 2000, "supplementalGroups": [3000],
                                        "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]}},
    "resources": {"resources": {"requests": {"cpu": 0.05, "memory": "20Mi"},
                                "limits": {"cpu": "200m", "memory": "128Mi", "ephemeral-storage": "1Gi"}},
                  "demo": {"resources": {"limits": {"example.com/widget": 1}}}},
    "labels-annotations": {"podLabels": {"team": "db", "app.kubernetes.io/part-of": "shop"},
                           "podAnnotations": {"prometheus.io/scrape": "false", "example.com/note": "x y"},
                           "service": {"annotations": {"a": "b"}}},
    "pull-secrets-digest": {"imagePullSecrets": [{"name": "regcred"}],
                            "image": {"digest": "sha256:" + "a" * 64}},
    "no-service": {"service": {"enabled": False}, "podMonitor": {"enabled": True},
                   "metrics": {"podAnnotations": False}},
}


@test
def objects_valid_against_kubernetes_schemas():
    assert K8S_MODELS, "PGVIGIL_K8S_MODELS unset (tests/helm/test_chart.sh sets it)"
    rendered = []
    for name, values in VALUE_SETS.items():
        for kube in ("1.33.0", "1.36.0"):
            docs, _ = render(values=values, extra=["--kube-version", kube])
            rendered.append({"set": f"{name} (k8s {kube})", "objects": docs})
    path = os.path.join(TMP, "objects.json")
    with open(path, "w") as f:
        json.dump(rendered, f)
    proc = run(["node", os.path.join(HERE, "validate_k8s.mjs"), K8S_MODELS, path])
    assert proc.returncode == 0, f"invalid objects:\n{proc.stdout}\n{proc.stderr}"
    print("    " + proc.stdout.strip().splitlines()[0])
    # The validator itself refuses what the API server would (so a pass means something).
    bad = json.loads(json.dumps(rendered[0]["objects"]))
    dep = [d for d in bad if d["kind"] == "Deployment"][0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"]["runAsNonroot"] = True
    c["name"] = "my.app"
    dep["spec"]["template"]["metadata"]["labels"]["team"] = "a b"
    with open(path, "w") as f:
        json.dump([{"set": "mutated", "objects": bad}], f)
    proc = run(["node", os.path.join(HERE, "validate_k8s.mjs"), K8S_MODELS, path])
    assert proc.returncode != 0, "validator accepted a mutated Deployment"
    for what in ("runAsNonroot", "my.app", "a b"):
        assert what in proc.stdout, f"validator missed {what}:\n{proc.stdout}"


def main():
    passed = failed = 0
    os.environ.setdefault("KUBECONFIG", os.devnull)
    try:
        for fn in TESTS:
            try:
                fn()
                passed += 1
                print(f"PASS {fn.__name__}", flush=True)
            except Exception as e:  # noqa: BLE001 (report every failure, keep going)
                failed += 1
                print(f"FAIL {fn.__name__}: {e}", flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
