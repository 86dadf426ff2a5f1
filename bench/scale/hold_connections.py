#!/usr/bin/env python3
"""Holds N idle client connections to PostgreSQL (unix socket, trust auth) spread over the
bench_* databases, until killed: the "connections" dimension of the scale benchmark.
Speaks the startup protocol itself, so one small process holds hundreds of sessions.
  hold_connections.py SOCKET_DIR PORT USER N DB [DB ...]"""
import os
import signal
import socket
import struct
import sys
import time


def connect(sock_path, user, db):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    params = b"".join(k + b"\0" + v.encode() + b"\0" for k, v in
                      ((b"user", user), (b"database", db), (b"application_name", "bench_idle")))
    body = struct.pack("!i", 196608) + params + b"\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    buf = b""
    while True:  # until ReadyForQuery
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection to {db} closed during startup")
        buf += chunk
        while len(buf) >= 5:
            kind, length = buf[0:1], struct.unpack("!i", buf[1:5])[0]
            if len(buf) < 1 + length:
                break
            if kind == b"E":
                raise RuntimeError(f"connection to {db} refused: {buf[5:1 + length]!r}")
            if kind == b"Z":
                return s
            buf = buf[1 + length:]


def main():
    sock_dir, port, user, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    dbs = sys.argv[5:]
    path = os.path.join(sock_dir, f".s.PGSQL.{port}")
    held = [connect(path, user, dbs[i % len(dbs)]) for i in range(n)]
    print(f"holding {len(held)} connections", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
