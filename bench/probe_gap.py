#!/usr/bin/env python3
"""Polls pgvigil's /health every 20 ms; each new database.last_probe_at is one probe. Prints one
Markdown row: probes, how many of them were by traffic (another statement stood for SELECT 1,
probe.reuse_traffic; "-" for a binary without pgvigil_probes_by_traffic_total), gap p50/p99/max
between successive probes (1 s interval expected)."""
import argparse
import json
import time
import urllib.request
from datetime import datetime


def parse(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def by_traffic(health_url):
    """pgvigil_probes_by_traffic_total and pgvigil_probes_total{outcome="ok"} from /metrics."""
    url = health_url.rsplit("/health", 1)[0] + "/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except Exception:  # noqa: BLE001
        return None
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in ("pgvigil_probes_by_traffic_total", 'pgvigil_probes_total{outcome="ok"}'):
            values[name] = float(value)
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--label", default="pgvigil")
    ap.add_argument("--warmup", type=float, default=10)
    a = ap.parse_args()
    deadline = time.time() + a.warmup + a.seconds
    traffic_before = None
    start_measuring = time.time() + a.warmup
    probes = []
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(a.url, timeout=1) as r:
                body = r.read()
        except Exception as e:  # noqa: BLE001 - 503 while starting carries a body too
            body = getattr(e, "read", lambda: b"")()
        try:
            at = json.loads(body)["database"]["last_probe_at"]
        except Exception:  # noqa: BLE001
            at = None
        if at and at != last:
            last = at
            if time.time() >= start_measuring:
                if traffic_before is None:
                    traffic_before = by_traffic(a.url) or {}
                probes.append(parse(at))
        time.sleep(0.02)
    gaps = sorted(b - a_ for a_, b in zip(probes, probes[1:]))
    after = by_traffic(a.url) or {}
    key = "pgvigil_probes_by_traffic_total"
    traffic = (f"{after[key] - traffic_before.get(key, 0):.0f}"
               if key in after and traffic_before is not None else "-")
    if not gaps:
        print(f"| {a.label} | {len(probes)} | {traffic} | - | - | - | - |")
        return 1

    def pct(p):
        return gaps[min(len(gaps) - 1, int(round(p / 100 * (len(gaps) - 1))))]

    p99 = pct(99)
    print(f"| {a.label} | {len(probes)} | {traffic} | {pct(50)*1000:.0f} ms | {p99*1000:.0f} ms | "
          f"{gaps[-1]*1000:.0f} ms | {'PASS' if p99 <= 1.050 else 'FAIL'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
