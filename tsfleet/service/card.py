"""The device card: everything known about one device, without scanning readings.

Each section is one small query on a table or view keyed by device (the
latest-state table ``device_latest`` maintained at ingest, the domains'
result tables and findings views). A section whose relation does not exist in
this store (a domain not yet analysed) is reported as ``None``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from tsfleet.domain import DOMAINS
from tsfleet.errors import UnknownDevice
from tsfleet.service.snapshots import STATE_TIMES, STATE_VIEWS

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

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

#: The copies made by the last analysis run (service.snapshots), read instead of the
#: views once the view's domain has run: relation -> (SQL with ``?`` for the key and the
#: device id, the key).
_FINDINGS_COPY = "select * from card_findings where domain = ? and subject_id = ?"
_STATE_COPY = "select state from card_state where source = ? and device_id = ?"
COPIES: dict[str, tuple[str, str]] = {
    **{d.findings_view: (_FINDINGS_COPY, d.name) for d in DOMAINS},
    **{view: (_STATE_COPY, view) for views in STATE_VIEWS.values() for view in views},
}
#: relation -> the domain whose run makes its copy
COPIED_BY: dict[str, str] = {
    **{d.findings_view: d.name for d in DOMAINS},
    **{view: domain for domain, views in STATE_VIEWS.items() for view in views},
}


def relations(con) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from duckdb_tables() where schema_name = 'main' union all "
        "select view_name from duckdb_views() where schema_name = 'main'").fetchall()}


#: What the card needs of the catalog, in one round trip: the relations there are, and
#: the domains whose last analysis run made the copies.
_CATALOG = ("select 'relation', table_name from duckdb_tables() where schema_name = 'main' "
            "union all select 'relation', view_name from duckdb_views() "
            "where schema_name = 'main' "
            "union all select distinct 'analysed', analysis from analysis_runs "
            "where status = 'ok'")

def _catalog(fleet: Fleet) -> tuple[set[str], set[str]]:
    have: set[str] = set()
    analysed: set[str] = set()
    for kind, name in fleet.con.execute(_CATALOG).fetchall():
        (have if kind == "relation" else analysed).add(name)
    return have, analysed


def _typed(row: dict[str, Any], times: tuple[str, ...]) -> dict[str, Any]:
    """A row read back from a state copy's JSON with its time columns (:data:`STATE_TIMES`)
    as the view gives them (JSON has no time type: ``to_json`` wrote "2026-07-30 23:36:34")."""
    for column in times:
        text = row.get(column)
        if isinstance(text, str):
            try:
                row[column] = (date.fromisoformat(text) if len(text) == 10
                               else datetime.fromisoformat(text))
            except ValueError:      # infinity: the text as it is
                pass
    return row


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def device_card(fleet: Fleet, device_id: str) -> dict[str, Any]:
    """One device's card as a dict of sections.

    A handful of round trips, whatever the number of sections: the catalog, the copies
    of every analysed domain's state and findings, and one query per section that is
    not a copy.

    >>> from tsfleet import Fleet
    >>> f = Fleet(memory=True)
    >>> _ = f.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
    ...                            "metric": "battery_pct", "value": 87}])
    >>> device_card(f, "pump-17")["latest"][0]["value"]
    87.0
    """
    have, analysed = _catalog(fleet)
    copied = [name for name, (relation, _, _) in SECTIONS.items()
              if relation in have and COPIED_BY.get(relation) in analysed]
    copies = {SECTIONS[name][0]: COPIES[SECTIONS[name][0]] for name in copied}
    states = [key for sql, key in copies.values() if sql is _STATE_COPY]
    findings = [key for sql, key in copies.values() if sql is _FINDINGS_COPY]
    state_rows = _grouped(fleet.query(
        "select source, state from card_state where device_id = ? and source in "
        "(select unnest(?::varchar[]))", [device_id, states]), "source") if states else {}
    finding_rows = _grouped(fleet.query(
        "select * from card_findings where subject_id = ? and domain in "
        "(select unnest(?::varchar[]))", [device_id, findings]), "domain") if findings else {}
    card: dict[str, Any] = {"device_id": device_id}
    for name, (relation, sql, single) in SECTIONS.items():
        if relation not in have:
            card[name] = None
            continue
        if name in copied:  # the copy made by the last analysis run
            key = COPIES[relation][1]
            if COPIES[relation][0] is _STATE_COPY:
                rows = [_typed(json.loads(r["state"]), STATE_TIMES.get(relation, ()))
                        for r in state_rows.get(key, [])]
            else:  # a findings copy: the view's own columns back in place
                rows = [{k: v for k, v in r.items() if k != "extra"}
                        | json.loads(r["extra"] or "{}") for r in finding_rows.get(key, [])]
        else:
            rows = fleet.query(sql, [device_id])
        card[name] = (rows[0] if rows else None) if single else rows
    if card["identity"] is None and not card["latest"]:
        from tsfleet.errors import did_you_mean

        known = [r["device_id"] for r in fleet.query(
            "select device_id from devices union select device_id from device_latest")]
        raise UnknownDevice(f"device {device_id!r} is neither registered nor seen in readings"
                            + did_you_mean(device_id, known))
    return card
