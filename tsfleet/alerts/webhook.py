"""Alert notifications to a webhook in the Alertmanager webhook shape (version 4).

The outbox (``notifications``) holds one row per notice owed: an alert episode that
fired, and later its resolution. :func:`send_notifications` groups pending and failed
notices by ``group_by`` labels, posts one body per group (at most ``max_alerts``
alerts each), and records per notice whether it was delivered. A notice is never
re-sent once delivered; a failed one is retried by the next call, so nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from tsfleet.alerts.http import DEFAULT_POLICY, PostResult, RetryPolicy, post_json

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class SendReport:
    """What one send did: requests made and notices delivered, failed or rejected."""

    n_requests: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{len(self.delivered)} delivered, {len(self.failed)} failed (kept for retry), "
                f"{len(self.rejected)} rejected, in {self.n_requests} requests")


def rfc3339(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if t else ZERO_TIME


def webhook_alert(row: dict, status: str) -> dict:
    """One entry of ``alerts[]``: status, labels, annotations, startsAt, endsAt, ..."""
    labels = {k: str(v) for k, v in json.loads(row["labels"]).items() if v is not None}
    return {
        "status": status,
        "labels": labels,
        "annotations": json.loads(row["annotations"]),
        "startsAt": rfc3339(row["starts_at"] or row["active_since"]),
        "endsAt": rfc3339(row["ends_at"]) if status == "resolved" else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": row["fingerprint"],
    }


def webhook_body(alerts: list[dict], group_labels: dict[str, str], *, receiver: str,
                 external_url: str = "", truncated: int = 0) -> dict:
    """The Alertmanager v4 body for one group of ``alerts`` (entries of :func:`webhook_alert`).

    >>> a = {"status": "firing", "labels": {"alertname": "X", "site": "a"},
    ...      "annotations": {}, "startsAt": "", "endsAt": ZERO_TIME, "generatorURL": "",
    ...      "fingerprint": "f"}
    >>> body = webhook_body([a], {"alertname": "X"}, receiver="ops")
    >>> body["version"], body["status"], body["groupKey"], body["commonLabels"]["site"]
    ('4', 'firing', '{}:{alertname="X"}', 'a')
    """
    common_labels = _common([a["labels"] for a in alerts])
    common_annotations = _common([a["annotations"] for a in alerts])
    key = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return {
        "version": "4",
        "groupKey": "{}:{" + key + "}",
        "truncatedAlerts": truncated,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": common_annotations,
        "externalURL": external_url,
        "alerts": alerts,
    }


def _common(dicts: list[dict]) -> dict:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def send_notifications(con: duckdb.DuckDBPyConnection, url: str, *, receiver: str = "tsfleet",
                       group_by: Sequence[str] = ("alertname", "site"), max_alerts: int = 100,
                       external_url: str = "", policy: RetryPolicy = DEFAULT_POLICY,
                       at: datetime, sleep: Callable[[float], None] | None = None) -> SendReport:
    """Deliver every pending or failed notice; record the outcome per notice."""
    rows = con.execute(
        "select n.notification_id, n.status, a.* from notifications n "
        "join alerts a using (fingerprint) where n.state in ('pending', 'failed') "
        "order by n.status = 'resolved', n.created_at, n.notification_id").fetchall()
    names = [d[0] for d in con.description]
    records = [dict(zip(names, r, strict=True)) for r in rows]
    report = SendReport()
    for status in ("firing", "resolved"):
        groups: dict[tuple, list[dict]] = {}
        for rec in records:
            if rec["status"] != status:
                continue
            labels = json.loads(rec["labels"])
            key = tuple((k, str(labels.get(k) or "")) for k in group_by)
            groups.setdefault(key, []).append(rec)
        for key, members in groups.items():
            for lo in range(0, len(members), max_alerts):
                chunk = members[lo:lo + max_alerts]
                body = webhook_body([webhook_alert(r, status) for r in chunk], dict(key),
                                    receiver=receiver, external_url=external_url)
                ids = [r["notification_id"] for r in chunk]
                idem = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]
                kw = {"sleep": sleep} if sleep else {}
                result = post_json(url, body, headers={"Idempotency-Key": idem}, policy=policy,
                                   **kw)
                report.n_requests += result.attempts
                _record(con, ids, result, at)
                getattr(report, result.state).extend(ids)
    return report


def _record(con: duckdb.DuckDBPyConnection, ids: list[str], result: PostResult,
            at: datetime) -> None:
    con.register("_tsf_sent", pa.table({"notification_id": ids}))
    try:
        con.execute(
            "update notifications set state = ?, attempts = attempts + ?, last_error = ?, "
            "delivered_at = ? where notification_id in (select notification_id from _tsf_sent)",
            [result.state, result.attempts, result.error,
             at if result.state == "delivered" else None])
    finally:
        con.unregister("_tsf_sent")
