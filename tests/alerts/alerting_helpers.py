"""Helpers for the alerts tests: findings tables with known rows, a local HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa

from tsfleet.alerts.ruleset import CONTRACT_COLUMNS

T0 = datetime(2026, 6, 1)


def finding(domain: str, finding: str, subject_id: str, *, severity: str = "warning",
            value: float = 1.0, site: str = "plant-a", zone: str = "plant-a/z1-normal",
            subject_kind: str = "device", action: str | None = None,
            due_at: datetime | None = None, observed_at: datetime = T0) -> dict:
    return dict(domain=domain, finding=finding, subject_kind=subject_kind,
                subject_id=subject_id, site=site, zone=zone, severity=severity, value=value,
                summary=f"{subject_id}: {finding}", action=action, due_at=due_at,
                observed_at=observed_at)


def set_findings(fleet, domain: str, rows: list[dict]) -> None:
    """(Re)create table ``<domain>_findings`` holding exactly ``rows`` (contract columns)."""
    types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us")}
    table = pa.table({c: pa.array([r[c] for r in rows], types[t])
                      for c, t in CONTRACT_COLUMNS.items()})
    # The store's own findings view of that domain gives way to the test's rows.
    if fleet.con.execute("select count(*) from duckdb_views() where view_name = ?",
                         [f"{domain}_findings"]).fetchone()[0]:
        fleet.con.execute(f"drop view {domain}_findings").fetchall()
    fleet.con.complete()
    fleet.con.register("_t_findings", table)
    fleet.con.execute(f"create or replace table {domain}_findings as select * from _t_findings")
    fleet.con.unregister("_t_findings")


class Endpoint:
    """A real HTTP server on 127.0.0.1 that can fail, be slow, and dedupe by idempotency key."""

    def __init__(self) -> None:
        self.requests: list[dict] = []      # every request that reached the handler
        self.accepted: list[dict] = []      # bodies answered with 2xx
        self.tickets: dict[str, dict] = {}  # idempotency key -> ticket (server-side dedupe)
        self.fail_next = 0                  # answer this many requests with fail_status
        self.fail_status = 503
        self.slow_next = 0                  # process, but answer late, this many requests
        self.slow_s = 0.0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                with endpoint.lock:
                    endpoint.requests.append({"key": key, "body": body,
                                              "path": self.path})
                    failing = endpoint.fail_next > 0
                    if failing:
                        endpoint.fail_next -= 1
                    slow = endpoint.slow_next > 0
                    if slow:
                        endpoint.slow_next -= 1
                    if not failing:
                        endpoint.accepted.append(body)
                        endpoint.tickets.setdefault(key, body)
                if slow:
                    time.sleep(endpoint.slow_s)
                status = endpoint.fail_status if failing else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": true}')
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
