"""Work orders to a ticketing endpoint: one POST per work order revision.

The work order id is the correlation key (header ``X-Correlation-Key`` and field
``correlation_key``); ``workorder_id:revision`` is the idempotency key (header
``Idempotency-Key``), so a retried POST can be recognised by the endpoint and an
updated work order is a new delivery. ``ticket_deliveries`` records every revision's
state per endpoint: a delivered revision is never sent again, a failed one is retried
by the next export, a rejected one (4xx) waits for a new revision.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import duckdb

from tsfleet.alerts.http import DEFAULT_POLICY, RetryPolicy, post_json
from tsfleet.alerts.webhook import SendReport
from tsfleet.alerts.workorders import work_orders


def ticket_payload(order: dict) -> dict:
    """The JSON a ticketing endpoint receives for one work order."""
    return {
        "correlation_key": order["workorder_id"],
        "idempotency_key": f"{order['workorder_id']}:{order['revision']}",
        "title": f"Site visit {order['site']}: {order['actions']}",
        "site": order["site"],
        "due_at": order["due_at"],
        "priority": order["severity"],
        "n_items": order["n_items"],
        "items": order["items"],
    }


def export_tickets(con: duckdb.DuckDBPyConnection, url: str, *, at: datetime,
                   policy: RetryPolicy = DEFAULT_POLICY,
                   sleep: Callable[[float], None] | None = None) -> SendReport:
    """Send every work order revision not yet delivered (or rejected) to ``url``."""
    done = {(r[0], r[1]) for r in con.execute(
        "select workorder_id, revision from ticket_deliveries where endpoint = ? "
        "and state in ('delivered', 'rejected')", [url]).fetchall()}
    report = SendReport()
    for order in work_orders(con):
        key = (order["workorder_id"], order["revision"])
        if key in done:
            continue
        payload = ticket_payload(order)
        kw = {"sleep": sleep} if sleep else {}
        result = post_json(url, payload, policy=policy, headers={
            "Idempotency-Key": payload["idempotency_key"],
            "X-Correlation-Key": payload["correlation_key"]}, **kw)
        report.n_requests += result.attempts
        getattr(report, result.state).append(payload["idempotency_key"])
        con.execute(
            "insert into ticket_deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "on conflict (workorder_id, revision, endpoint) do update set "
            "state = excluded.state, attempts = ticket_deliveries.attempts + excluded.attempts, "
            "last_status = excluded.last_status, last_error = excluded.last_error, "
            "delivered_at = excluded.delivered_at",
            [*key, url, result.state, result.attempts, result.status, result.error, at,
             at if result.state == "delivered" else None])
    return report
