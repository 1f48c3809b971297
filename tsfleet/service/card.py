"""The device card: everything known about one device, without scanning readings.

Each section is one small query on a table or view keyed by device (the
latest-state table ``device_latest`` maintained at ingest, the domains'
result tables and findings views). A section whose relation does not exist in
this store (a domain not yet analysed) is reported as ``None``.
"""

from __future__ import annotations

from typing import Any

from tsfleet.errors import UnknownDevice
from tsfleet.service.snapshots import card_table

#: section -> (relation it needs, SQL with one ``?`` for the device id, one row?)
SECTIONS: dict[str, tuple[str, str, bool]] = {
    "identity": ("devices", "select * exclude (batch_id) from devices where device_id = ?", True),
    "last_seen": ("device_last_seen", "select * from device_last_seen where device_id = ?", True),
    "latest": ("device_latest", "select metric, value, observed_at from device_latest "
                                "where device_id = ? order by metric", False),
    "battery_state": ("battery_state", "select * from battery_state where device_id = ?", True),
    "battery_forecast": ("battery_forecast", "select * exclude (params) from battery_forecast "
                                             "where device_id = ?", True),
    "battery": ("power_findings", "select * from power_findings where subject_id = ?", False),
    "firmware_state": ("firmware_device_status",
                       "select * from firmware_device_status where device_id = ?", True),
    "firmware": ("firmware_findings", "select * from firmware_findings where subject_id = ?",
                 False),
    "calibration": ("calibration_findings",
                    "select * from calibration_findings where subject_id = ?", False),
    "environment": ("environment_findings",
                    "select * from environment_findings where subject_id = ?", False),
    "network": ("network_findings", "select * from network_findings where subject_id = ?", False),
    "alerts": ("alerts", "select * exclude (params) from alerts where subject_kind = 'device' "
                         "and subject_id = ? and state in ('pending', 'firing', 'acknowledged') "
                         "order by severity, rule", False),
}


def relations(con) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' union all "
        "select view_name from duckdb_views() where schema_name = 'main'").fetchall()}


def device_card(fleet, device_id: str) -> dict[str, Any]:
    """One device's card as a dict of sections.

    >>> from tsfleet import Fleet
    >>> f = Fleet(memory=True)
    >>> _ = f.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
    ...                            "metric": "battery_pct", "value": 87}])
    >>> device_card(f, "pump-17")["latest"][0]["value"]
    87.0
    """
    have = relations(fleet.con)
    card: dict[str, Any] = {"device_id": device_id}
    for name, (relation, sql, single) in SECTIONS.items():
        if card_table(relation) in have:  # the copy made by the last analysis run
            sql = sql.replace(f" from {relation} ", f" from {card_table(relation)} ")
        elif relation not in have:
            card[name] = None
            continue
        rows = fleet.query(sql, [device_id])
        card[name] = (rows[0] if rows else None) if single else rows
    if card["identity"] is None and not card["latest"]:
        raise UnknownDevice(f"device {device_id!r} is neither registered nor seen in readings")
    return card
