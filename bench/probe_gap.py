#!/usr/bin/env python3
"""Polls pgvigil's /health every 20 ms; each new database.last_probe_at is one probe. Prints one
Markdown row: probes, gap p50/p99/max between successive probes (1 s interval expected)."""
import argparse
import json
import time
import urllib.request
from datetime import datetime


def parse(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--label", default="pgvigil")
    ap.add_argument("--warmup", type=float, default=10)
    a = ap.parse_args()
    deadline = time.time() + a.warmup + a.seconds
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
                probes.append(parse(at))
        time.sleep(0.02)
    gaps = sorted(b - a_ for a_, b in zip(probes, probes[1:]))
    if not gaps:
        print(f"| {a.label} | {len(probes)} | - | - | - | - |")
        return 1

    def pct(p):
        return gaps[min(len(gaps) - 1, int(round(p / 100 * (len(gaps) - 1))))]

    p99 = pct(99)
    print(f"| {a.label} | {len(probes)} | {pct(50)*1000:.0f} ms | {p99*1000:.0f} ms | "
          f"{gaps[-1]*1000:.0f} ms | {'PASS' if p99 <= 1.050 else 'FAIL'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
