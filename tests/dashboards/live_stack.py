"""Live processes on loopback for the dashboard tests (python3 stdlib only): a throwaway
PostgreSQL 15 (initdb in a temp dir, pg_stat_statements, a `vigil` role in pg_monitor with a
random password), child processes with their logs in the same dir, a real Prometheus and its
query API. close() stops everything it started and removes the dir (PGVIGIL_KEEP_DIR=1 keeps it).
Used by test_dashboards.py (one pgvigil) and fleet_live_test.py (three)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LiveStack:
    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.procs = {}  # key -> Popen, in start order
        self.pg_started = False
        self.as_pg = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]

    def run_pg(self, args, **kw):
        return subprocess.run(self.as_pg + args, check=True, capture_output=True, text=True,
                              timeout=120, **kw)

    def psql(self, sql, db="postgres"):
        out = self.run_pg(["psql", "-X", "-tA", "-h", self.dir, "-p", str(self.pg_port), "-U",
                           "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql])
        return out.stdout.strip()

    def start_postgres(self, extra_conf=""):
        """initdb, start, then the vigil role (password in self.password) and the extension."""
        self.pg_port = free_port()
        self.run_pg([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.pg_port}\n"
                    f"unix_socket_directories = '{self.dir}'\n"
                    "shared_preload_libraries = 'pg_stat_statements'\n" + extra_conf)
        self.start_pg_ctl()
        self.password = "live-" + os.urandom(6).hex()
        self.psql(f"CREATE ROLE vigil LOGIN PASSWORD '{self.password}' IN ROLE pg_monitor")
        self.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def start_pg_ctl(self):
        self.run_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "pg.log"),
                     "-w", "start"])
        self.pg_started = True

    def stop_postgres(self, mode="fast"):
        subprocess.run(self.as_pg + [f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                                     "stop"], capture_output=True, timeout=60)
        self.pg_started = False

    def vigil_url(self):
        return (f"postgresql://vigil:{self.password}@127.0.0.1:{self.pg_port}/postgres"
                "?sslmode=disable")

    def spawn(self, key, args, env, log):
        out = open(os.path.join(self.dir, log), "w")
        self.procs[key] = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def log(self, name):
        try:
            return open(os.path.join(self.dir, name)).read()[-3000:]
        except OSError:
            return ""

    def start_prometheus(self, rules, jobs, port=None):
        """A real Prometheus, 1 s scrapes and rule evaluation; `jobs`: [(job, ["host:port"])]."""
        self.prom_port = port or free_port()
        prom_yml = os.path.join(self.dir, "prometheus.yml")
        with open(prom_yml, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {rules}\nscrape_configs:\n")
            for job, targets in jobs:
                listed = ", ".join(f"'{t}'" for t in targets)
                f.write(f"  - job_name: {job}\n    static_configs:\n      - targets: [{listed}]\n")
        self.spawn("prometheus", ["/usr/bin/prometheus", f"--config.file={prom_yml}",
                                  f"--storage.tsdb.path={os.path.join(self.dir, 'tsdb')}",
                                  f"--web.listen-address=127.0.0.1:{self.prom_port}"],
                   dict(os.environ), "prometheus.log")

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.prom_port}/api/v1/query", data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return json.loads(e.read().decode() or "{}")

    def close(self):
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.pg_started:
            self.stop_postgres("immediate")
        if os.environ.get("PGVIGIL_KEEP_DIR") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
