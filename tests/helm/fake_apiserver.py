#!/usr/bin/env python3
"""A discovery-only stand-in for the Kubernetes API server, so that
`kubectl create --dry-run=client` can map the chart's kinds to resources without a cluster.

It answers /version, /api, /api/v1, /apis and /apis/<group>/<version> for the kinds the chart
renders (core v1, apps/v1, monitoring.coreos.com/v1) and 404 for everything else. Nothing is
stored: client-side dry runs never write. Prints the port it listens on, then serves until killed.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource(name, kind):
    return {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind,
            "verbs": VERBS}


GROUPS = {
    "apps/v1": [resource("deployments", "Deployment"), resource("statefulsets", "StatefulSet")],
    "monitoring.coreos.com/v1": [resource("servicemonitors", "ServiceMonitor"),
                                 resource("podmonitors", "PodMonitor"),
                                 resource("prometheusrules", "PrometheusRule")],
}
CORE = [resource("configmaps", "ConfigMap"), resource("secrets", "Secret"),
        resource("services", "Service"), resource("pods", "Pod"),
        resource("serviceaccounts", "ServiceAccount")]


def document(path):
    if path == "/version":
        return {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1"}]}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": CORE}
    if path == "/apis":
        groups = []
        for gv in GROUPS:
            group, version = gv.split("/")
            entry = {"groupVersion": gv, "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    gv = path[len("/apis/"):] if path.startswith("/apis/") else None
    if gv in GROUPS:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": GROUPS[gv]}
    return None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        body = document(self.path.split("?")[0])
        status = 200 if body is not None else 404
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
