"""Notifications that arrive: redirects, schemes and huge answers, against a real HTTP
server on 127.0.0.1. Delivered means the endpoint got the POST with its body."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.alerts.alerting_helpers import T0, finding
from tsfleet.alerts import RetryPolicy, parse_rules
from tsfleet.alerts.http import MAX_REDIRECTS, MAX_RESPONSE_BYTES, post_json

FAST = RetryPolicy(max_attempts=3, timeout_s=2.0, backoff_s=0.01, max_backoff_s=0.02)
PACK = parse_rules("""
[[rule]]
name = "Down"
source = "network_findings"
condition = "finding = 'gateway_down'"
""")


class Redirector:
    """``/sink`` takes anything and records it; ``/to/<code>/<target>`` answers
    ``<code>`` with ``Location: <target>``; ``/huge`` answers 200 with a 300 MB body."""

    def __init__(self) -> None:
        self.sink: list[dict] = []
        self.hits: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                server.hits.append((self.command, self.path))
                if self.path == "/sink":
                    server.sink.append({"method": self.command, "body": body,
                                        "key": self.headers.get("Idempotency-Key")})
                    self._answer(200, b'{"ok": true}')
                elif self.path.startswith("/to/"):
                    _, _, code, target = self.path.split("/", 3)
                    self.send_response(int(code))
                    self.send_header("Location", target.replace("~", "/"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(300 << 20))
                    self.end_headers()
                    try:
                        for _ in range(300):
                            self.wfile.write(b"x" * (1 << 20))
                    except OSError:
                        pass  # the client stopped reading: expected
                else:
                    self._answer(404, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _any  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, code: int, target: str) -> str:
        return f"{self.base}/to/{code}/{target.replace('/', '~')}"


@pytest.fixture
def web():
    r = Redirector()
    yield r
    r.server.shutdown()
    r.server.server_close()


def fire(fleet, findings, n=3):
    findings(fleet, "network", [finding("network", "gateway_down", f"gw-{i}",
                                        subject_kind="gateway", site="plant-a")
                                for i in range(n)])
    fleet.alerts.evaluate(PACK, at=T0)


@pytest.mark.parametrize("code", [307, 308])
def test_307_and_308_are_followed_with_the_post_and_its_body(fleet, findings, web, code):
    fire(fleet, findings)
    report = fleet.alerts.notify(web.to(code, web.base + "/sink"), policy=FAST, at=T0)
    assert len(report.delivered) == 3 and not report.failed and not report.rejected
    (got,) = web.sink
    assert got["method"] == "POST" and got["key"]
    assert len(json.loads(got["body"])["alerts"]) == 3
    assert {n["state"] for n in fleet.alerts.notifications()} == {"delivered"}


@pytest.mark.parametrize("code", [301, 302, 303])
def test_301_302_303_are_a_failure_to_fix_the_url_and_nothing_is_lost(
        fleet, findings, web, code):
    fire(fleet, findings)
    url = web.to(code, "/sink")                               # a relative Location
    report = fleet.alerts.notify(url, policy=FAST, at=T0)
    assert len(report.failed) == 3 and not report.delivered
    assert report.n_requests == 1                             # retrying the URL cannot help
    assert web.sink == []                                     # no GET without a body
    states = fleet.alerts.notifications()
    assert {n["state"] for n in states} == {"failed"}
    assert f"HTTP {code}" in states[0]["last_error"] and "to /sink" in states[0]["last_error"]
    assert "fix the URL" in states[0]["last_error"]
    # With the URL fixed, the next send delivers them all, once.
    assert len(fleet.alerts.notify(web.base + "/sink", policy=FAST, at=T0).delivered) == 3
    assert len(web.sink) == 1 and web.sink[0]["method"] == "POST"


@pytest.mark.parametrize("code", [302, 307])
def test_a_redirect_to_another_scheme_is_not_followed(web, code):
    result = post_json(web.to(code, "ftp://127.0.0.1/x"), {"a": 1}, policy=FAST)
    assert result.state == "failed" and result.status == code
    assert "ftp://127.0.0.1/x" in result.error and result.attempts == 1
    if code == 307:  # 302 is refused anyway; a 307 is refused for its scheme
        assert "a redirect must be an http:// or https:// URL" in result.error


def test_redirect_loops_end(web):
    loop = web.to(307, web.to(307, web.to(307, web.to(307, web.to(307, web.to(307, "/x"))))))
    result = post_json(loop, {"a": 1}, policy=FAST)
    assert result.state == "failed" and f"more than {MAX_REDIRECTS} redirects" in result.error
    assert result.attempts == 1


def test_only_a_bounded_part_of_a_huge_answer_is_read(web):
    t0 = time.monotonic()
    result = post_json(web.base + "/huge", {"a": 1}, policy=FAST)
    assert result.state == "delivered" and result.status == 200
    assert len(result.body) == MAX_RESPONSE_BYTES
    assert time.monotonic() - t0 < 5  # reading 300 MB takes far longer on this machine


def test_work_orders_sent_to_a_moved_endpoint_are_not_marked_delivered(fleet, findings, web):
    findings(fleet, "power", [finding("power", "battery_critical", "th-1", site="plant-a",
                                      severity="critical", action="replace_battery",
                                      due_at=T0)])
    fleet.alerts.plan_work_orders(at=T0)
    report = fleet.alerts.export_tickets(web.to(301, web.base + "/sink"), policy=FAST, at=T0)
    assert report.failed and not report.delivered and web.sink == []
    (row,) = fleet.query("select state, last_status from ticket_deliveries")
    assert row == {"state": "failed", "last_status": 301}
    report = fleet.alerts.export_tickets(web.to(308, web.base + "/sink"), policy=FAST, at=T0)
    assert len(report.delivered) == 1 and web.sink[0]["method"] == "POST"
