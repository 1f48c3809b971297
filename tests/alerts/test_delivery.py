"""Webhook (Alertmanager v4) and ticket delivery against a real HTTP server on 127.0.0.1:
retries with backoff, a failing endpoint, idempotency. Nothing lost, nothing sent twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.alerts.alerting_helpers import T0, finding
from tsfleet.alerts import RetryPolicy, parse_rules
from tsfleet.alerts.http import post_json
from tsfleet.errors import InvalidParameter

FAST = RetryPolicy(max_attempts=4, timeout_s=2.0, backoff_s=0.01, max_backoff_s=0.05)
PACK = parse_rules("""
[[rule]]
name = "Down"
source = "network_findings"
condition = "finding = 'gateway_down'"
annotations = { summary = "{subject_id} is down" }
""")
H = timedelta(hours=1)


def gateways(n, site="plant-a"):
    return [finding("network", "gateway_down", f"gw-{site}-{i}", subject_kind="gateway",
                    site=site, severity="critical") for i in range(n)]


def fire(fleet, findings, rows, at):
    findings(fleet, "network", rows)
    fleet.alerts.evaluate(PACK, at=at)


def delivered_ids(endpoint):
    return Counter((a["fingerprint"], a["status"]) for body in endpoint.accepted
                   for a in body["alerts"])


def test_webhook_body_has_the_alertmanager_v4_shape(fleet, findings, endpoint):
    fire(fleet, findings, gateways(2) + gateways(1, "plant-b"), T0)
    report = fleet.alerts.notify(endpoint.url, receiver="ops", policy=FAST, at=T0)
    assert len(report.delivered) == 3 and report.n_requests == 2     # one body per site
    body = next(b for b in endpoint.accepted if b["groupLabels"]["site"] == "plant-a")
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops"
    assert set(body) == {"version", "groupKey", "truncatedAlerts", "status", "receiver",
                         "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
                         "alerts"}
    assert body["groupLabels"] == {"alertname": "Down", "site": "plant-a"}
    assert body["commonLabels"]["severity"] == "critical"
    assert "subject_id" not in body["commonLabels"]
    alert = body["alerts"][0]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                          "generatorURL", "fingerprint"}
    assert alert["startsAt"] == "2026-06-01T00:00:00.000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["annotations"]["summary"].endswith(" is down")
    fire(fleet, findings, [], T0 + H)
    fleet.alerts.notify(endpoint.url, policy=FAST, at=T0 + H)
    resolved = [a for b in endpoint.accepted for a in b["alerts"] if a["status"] == "resolved"]
    assert len(resolved) == 3 and all(a["endsAt"] == "2026-06-01T01:00:00.000Z"
                                      for a in resolved)


def test_a_failing_webhook_loses_nothing_and_sends_nothing_twice(fleet, findings, endpoint):
    fire(fleet, findings, gateways(5), T0)
    endpoint.fail_next = 2                                 # two 503s, then success
    report = fleet.alerts.notify(endpoint.url, policy=FAST, at=T0)
    assert len(report.delivered) == 5 and report.n_requests == 3
    endpoint.fail_next = 100                               # endpoint down for good
    fire(fleet, findings, gateways(5) + gateways(2, "plant-b"), T0 + H)
    report = fleet.alerts.notify(endpoint.url, policy=FAST, at=T0 + H)
    assert len(report.failed) == 2 and report.n_requests == FAST.max_attempts
    failed = [n for n in fleet.alerts.notifications() if n["state"] == "failed"]
    assert len(failed) == 2 and failed[0]["attempts"] == 4 and "503" in failed[0]["last_error"]
    endpoint.fail_next = 0                                 # back up: the next send catches up
    fire(fleet, findings, [], T0 + 2 * H)
    fleet.alerts.notify(endpoint.url, policy=FAST, at=T0 + 2 * H)
    assert fleet.alerts.notify(endpoint.url, policy=FAST, at=T0 + 3 * H).n_requests == 0
    sent = delivered_ids(endpoint)
    assert len(sent) == 14 and set(sent.values()) == {1}   # 7 firing + 7 resolved, once each
    assert {n["state"] for n in fleet.alerts.notifications()} == {"delivered"}


def test_silenced_alerts_are_not_notified_until_the_silence_ends(fleet, findings, endpoint):
    findings(fleet, "network", gateways(2) + gateways(1, "plant-b"))
    sid = fleet.alerts.silence(["site=plant-a"], starts_at=T0, duration="1h", by="ana")
    fleet.alerts.evaluate(PACK, at=T0)
    muted = {a["subject_id"] for a in fleet.alerts.list_alerts() if a["silenced_by"] == sid}
    assert muted == {"gw-plant-a-0", "gw-plant-a-1"}
    fleet.alerts.notify(endpoint.url, policy=FAST, at=T0)
    assert [a["labels"]["site"] for b in endpoint.accepted for a in b["alerts"]] == ["plant-b"]
    fleet.alerts.evaluate(PACK, at=T0 + H)                 # the silence has ended
    fleet.alerts.notify(endpoint.url, policy=FAST, at=T0 + H)
    assert len(delivered_ids(endpoint)) == 3


def test_silence_matchers_and_expiry(fleet, findings):
    findings(fleet, "network", gateways(3) + gateways(1, "plant-b"))
    fleet.alerts.evaluate(PACK, at=T0)
    sid = fleet.alerts.silence(["alertname=~Do.*", "subject_id!=gw-plant-a-0",
                                "site!~plant-b"], starts_at=T0, duration="1d")
    muted = sorted(a["subject_id"] for a in fleet.alerts.list_alerts() if a["silenced_by"])
    assert muted == ["gw-plant-a-1", "gw-plant-a-2"]
    assert [s["silence_id"] for s in fleet.alerts.silences(active_at=T0 + H)] == [sid]
    fleet.alerts.expire_silence(sid, at=T0 + H)
    assert not any(a["silenced_by"] for a in fleet.alerts.list_alerts())
    for bad in (["site"], ["site=~("], []):
        with pytest.raises(InvalidParameter):
            fleet.alerts.silence(bad)
    with pytest.raises(InvalidParameter, match="end after it starts"):
        fleet.alerts.silence(["site=a"], starts_at=T0, ends_at=T0)


def work(fleet, findings, rows, at=T0):
    findings(fleet, "power", rows)
    return fleet.alerts.plan_work_orders(at=at)


def battery(subject, site="plant-a", due_days=5):
    return finding("power", "battery_critical", subject, site=site, severity="critical",
                   action="replace_battery", due_at=T0 + timedelta(days=due_days))


def test_tickets_are_idempotent_across_retries_timeouts_and_reruns(fleet, findings, endpoint):
    orders = work(fleet, findings, [battery("th-1"), battery("th-2", "plant-b")])
    assert len(orders) == 2
    endpoint.slow_next, endpoint.slow_s = 1, 0.6          # processed, but answered too late
    policy = RetryPolicy(max_attempts=3, timeout_s=0.3, backoff_s=0.01)
    report = fleet.alerts.export_tickets(endpoint.url, policy=policy, at=T0)
    assert len(report.delivered) == 2 and report.n_requests == 3
    keys = Counter(r["key"] for r in endpoint.requests)
    assert sorted(keys.values()) == [1, 2]                 # the timed-out POST was retried ...
    assert len(endpoint.tickets) == 2                      # ... and deduplicated by its key
    assert fleet.alerts.export_tickets(endpoint.url, policy=policy, at=T0).n_requests == 0
    # A new item joins the plant-a visit: same correlation key, new revision, sent once.
    work(fleet, findings, [battery("th-1"), battery("th-3"), battery("th-2", "plant-b")])
    report = fleet.alerts.export_tickets(endpoint.url, policy=policy, at=T0)
    assert report.n_requests == 1
    latest = endpoint.requests[-1]["body"]
    assert latest["correlation_key"] == orders[0]["workorder_id"] and latest["n_items"] == 2


def test_a_failing_ticket_endpoint_keeps_the_delivery_for_the_next_export(
        fleet, findings, endpoint):
    work(fleet, findings, [battery("th-1")])
    endpoint.fail_next = 100
    report = fleet.alerts.export_tickets(endpoint.url, policy=FAST, at=T0)
    assert report.failed and report.n_requests == 4
    (row,) = fleet.query("select state, attempts, last_status from ticket_deliveries")
    assert row == {"state": "failed", "attempts": 4, "last_status": 503}
    endpoint.fail_next = 0
    assert len(fleet.alerts.export_tickets(endpoint.url, policy=FAST, at=T0).delivered) == 1
    (row,) = fleet.query("select state, attempts from ticket_deliveries")
    assert row == {"state": "delivered", "attempts": 5}
    assert len(endpoint.tickets) == 1


def test_a_rejecting_endpoint_is_not_retried(fleet, findings, endpoint):
    work(fleet, findings, [battery("th-1")])
    endpoint.fail_next, endpoint.fail_status = 1, 422
    report = fleet.alerts.export_tickets(endpoint.url, policy=FAST, at=T0)
    assert report.rejected and report.n_requests == 1
    assert fleet.alerts.export_tickets(endpoint.url, policy=FAST, at=T0).n_requests == 0


def test_an_unreachable_endpoint_fails_within_bounded_attempts():
    waits = []
    result = post_json("http://127.0.0.1:9/none", {"a": 1}, sleep=waits.append,
                       policy=RetryPolicy(max_attempts=3, timeout_s=0.5, backoff_s=0.1,
                                          max_backoff_s=0.15))
    assert result.state == "failed" and result.attempts == 3 and result.status is None
    assert waits == [0.1, 0.15]                            # exponential, capped
    with pytest.raises(InvalidParameter):
        post_json("ftp://x", {})
    with pytest.raises(InvalidParameter):
        RetryPolicy(max_attempts=0)
