"""Alerts pushed into Alertmanager through its v2 API, as Prometheus does.

``POST /api/v2/alerts`` takes a JSON array of ``{labels, annotations, startsAt,
endsAt, generatorURL}``. A firing alert is sent with ``endsAt`` ``valid_s``
seconds ahead and re-sent every ``resend_s`` seconds (well before that) while it
fires, so Alertmanager never resolves it by timeout; once tsfleet resolves it,
it is sent once more with its real end, in the past, which resolves it there.
Alertmanager then does the routing, grouping, inhibition and silencing.

What was last accepted per Alertmanager URL is kept in ``alertmanager_pushes``, so
that a failed push is simply repeated by the next call and a resolution is never
lost while tsfleet is down. Both firing and acknowledged alerts are firing in
Alertmanager (an acknowledgement carries the label ``acknowledged="true"``).

>>> am_alert({"labels": '{"alertname": "BatteryLow", "site": "a"}', "annotations": '{}',
...           "starts_at": None, "active_since": None, "ends_at": None, "fingerprint": "f1",
...           "state": "firing"}, ends="2026-01-01T00:05:00.000Z",
...          generator="http://tsfleet.local/alerts")["generatorURL"]
'http://tsfleet.local/alerts/f1'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa

from tsfleet.alerts.http import PostResult, RetryPolicy, post_json
from tsfleet.alerts.webhook import rfc3339
from tsfleet.errors import InvalidParameter
from tsfleet.store import transaction

log = logging.getLogger("tsfleet.alerts")

#: Prometheus re-sends every minute and sets endsAt 4 evaluation intervals ahead.
RESEND_S, VALID_S = 60.0, 300.0
FIRING_STATES = ("firing", "acknowledged")


@dataclass
class PushReport:
    """One push: how many firing and resolved alerts were sent, and the outcome."""

    n_firing: int = 0
    n_resolved: int = 0
    result: PostResult | None = None
    sent: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.state == "delivered"

    def __str__(self) -> str:
        if self.result is None:
            return "nothing to push"
        outcome = ("accepted" if self.ok else
                   f"{self.result.state}: {self.result.error or self.result.status}")
        return f"{self.n_firing} firing and {self.n_resolved} resolved alerts pushed: {outcome}"


def api_url(base: str) -> str:
    """``http://am:9093`` (or its ``/api/v2/alerts``) -> the v2 alerts endpoint."""
    if not base.startswith(("http://", "https://")):
        raise InvalidParameter(f"an Alertmanager URL is http://host:port, got {base!r}")
    base = base.rstrip("/")
    return base if base.endswith("/api/v2/alerts") else base + "/api/v2/alerts"


def am_alert(row: dict, *, ends: str, generator: str) -> dict:
    """One entry of the v2 POST body."""
    labels = {k: str(v) for k, v in json.loads(row["labels"]).items() if v is not None}
    if row["state"] == "acknowledged":
        labels["acknowledged"] = "true"
    annotations = {k: str(v) for k, v in json.loads(row["annotations"]).items()
                   if v is not None}
    return {"labels": labels, "annotations": annotations,
            "startsAt": rfc3339(row["starts_at"] or row["active_since"]), "endsAt": ends,
            "generatorURL": f"{generator.rstrip('/')}/{row['fingerprint']}"}


def push_alerts(con: duckdb.DuckDBPyConnection, url: str, *, at: datetime,
                resend_s: float = RESEND_S, valid_s: float = VALID_S,
                generator: str = "http://tsfleet.invalid/alerts",
                policy: RetryPolicy | None = None) -> PushReport:
    """Send what Alertmanager at ``url`` is owed at ``at`` (naive UTC); see the module."""
    if not 0 < resend_s < valid_s:
        raise InvalidParameter(f"resend_s must be positive and below valid_s, got "
                               f"{resend_s} and {valid_s}")
    target = api_url(url)
    policy = policy or RetryPolicy(max_attempts=3, timeout_s=5.0, max_backoff_s=2.0)
    rows = con.execute(
        "select a.*, p.status as pushed_status, p.episode as pushed_episode, "
        "p.pushed_at as last_pushed_at from alerts a left join alertmanager_pushes p "
        "on p.url = ? and p.fingerprint = a.fingerprint "
        "where (a.state in ('firing', 'acknowledged') and (p.status is null "
        "  or p.status = 'resolved' or p.episode <> a.episode "
        "  or p.pushed_at <= ?::timestamp)) "
        "or (a.state = 'resolved' and p.status = 'firing')",
        [target, at - timedelta(seconds=resend_s)]).fetchall()
    names = [d[0] for d in con.description]
    records = [dict(zip(names, r, strict=True)) for r in rows]
    report = PushReport()
    if not records:
        return report
    ends_firing = at + timedelta(seconds=valid_s)
    body, pushed = [], []
    for rec in records:
        firing = rec["state"] in FIRING_STATES
        ends_at = ends_firing if firing else (rec["ends_at"] or at)
        body.append(am_alert(rec, ends=rfc3339(ends_at), generator=generator))
        pushed.append((rec["fingerprint"], rec["episode"], "firing" if firing else "resolved",
                       ends_at))
        report.n_firing += firing
        report.n_resolved += not firing
    report.result = post_json(target, body, policy=policy)
    if report.ok:
        report.sent = [p[0] for p in pushed]
        _record(con, target, pushed, at)
    else:
        log.warning("alerts: pushing to Alertmanager %s failed: %s", target,
                    report.result.error or report.result.status)
    return report


def _record(con, target: str, pushed: list[tuple], at: datetime) -> None:
    con.register("_tsf_am", pa.table({
        "fingerprint": [p[0] for p in pushed], "episode": [p[1] for p in pushed],
        "status": [p[2] for p in pushed], "ends_at": [p[3] for p in pushed]}))
    try:
        with transaction(con):
            con.execute(
                "insert or replace into alertmanager_pushes "
                "select ?, fingerprint, episode, status, ?::timestamp, ends_at from _tsf_am",
                [target, at])
    finally:
        con.unregister("_tsf_am")


class Pusher:
    """Pushes to Alertmanager from a long-running process (``tsfleet serve``): at most
    every ``every_s`` seconds, on the thread that owns the store; never raises."""

    def __init__(self, url: str, every_s: float = 10.0, **options):
        api_url(url)  # a wrong URL fails at start
        self.url, self.every_s, self.options = url, every_s, options
        self._next = 0.0
        self.last: PushReport | None = None

    def tick(self, fleet) -> PushReport | None:
        import time

        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self.every_s
        try:
            self.last = fleet.alerts.push_alertmanager(self.url, **self.options)
        except Exception as exc:  # noqa: BLE001 - never stop ingest for a notification
            log.warning("alerts: pushing to Alertmanager %s failed: %s", self.url, exc)
            return None
        if self.last.result is not None:
            log.info("alerts: Alertmanager %s: %s", self.url, self.last)
        return self.last
