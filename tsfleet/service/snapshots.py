"""Per-device copies of the findings and state views, made after each analysis run.

The findings views and some state views compute over whole result tables; a
device card that filtered them per call took 20-170 ms a section. After a
domain's analysis the runner copies its findings view into ``card_findings`` (the
findings contract's columns, every domain) and its state views into ``card_state``
(one JSON row per device), both created by migration 922. A card is then a handful
of small table lookups, and the findings a run opened and closed are the difference
between the copy before and after it. They are as fresh as the last analysis run of
their domain (see ``freshness``).
"""

from __future__ import annotations

from tsfleet.alerts.ruleset import CONTRACT_COLUMNS
from tsfleet.domain import BY_NAME
from tsfleet.store import quote_ident as q
from tsfleet.store import transaction

#: The findings contract's columns: a domain's findings view may add its own after them
#: (calibration: level), which the copy keeps as one JSON object in ``extra``.
CONTRACT = ", ".join(q(c) for c in CONTRACT_COLUMNS)

#: domain -> state views (keyed by device_id) copied after its analysis
STATE_VIEWS: dict[str, tuple[str, ...]] = {
    "power": ("battery_state",),
    "firmware": ("firmware_device_status",),
    "network": ("network_attachment",),
}

#: The time columns of the state views, which their JSON copy in ``card_state`` holds as
#: text ("2026-07-30 23:36:34"): the card reads them back as times. Declared, not looked
#: up per card (the catalog query took longer than the card's other lookups together);
#: tests/service/test_card.py keeps it in step with the views.
STATE_TIMES: dict[str, tuple[str, ...]] = {
    "battery_state": ("observed_at", "critical_at", "empty_at"),
    "firmware_device_status": ("reported_at", "on_version_since"),
    "network_attachment": ("attached_since", "last_event_at", "as_of"),
}


def finding_keys(con, domain: str) -> set[tuple]:
    """(finding, subject_kind, subject_id) of ``domain``'s copied findings."""
    return set(con.execute("select finding, subject_kind, subject_id from card_findings "
                           "where domain = ?", [domain]).fetchall())


def refresh_card_tables(con, domain: str) -> None:
    """Copy ``domain``'s findings and state views into the card tables, in one transaction."""
    findings = BY_NAME[domain].findings_view
    states = [v for v in STATE_VIEWS.get(domain, ()) if _exists(con, v)]
    with transaction(con):
        con.execute("delete from card_findings where domain = ?", [domain])
        if _exists(con, findings):
            own = [r[0] for r in con.execute(f"describe {q(findings)}").fetchall()
                   if r[0] not in CONTRACT_COLUMNS]
            extra = (f"to_json(struct_pack({', '.join(f'{q(c)} := {q(c)}' for c in own)}))"
                     if own else "null")
            con.execute(f"insert into card_findings by name select {CONTRACT}, {extra} as extra "
                        f"from {q(findings)}")
        for view in states:
            con.execute("delete from card_state where source = ?", [view])
            con.execute(f"insert into card_state select ?, device_id, to_json(v) "
                        f"from {q(view)} v where device_id is not null", [view])


def _exists(con, name: str) -> bool:
    """A view (or a table standing in for one) of that name in the main schema."""
    return bool(con.execute(
        "select count(*) from (select view_name as name from duckdb_views() where "
        "schema_name = 'main' union all select table_name from duckdb_tables() where "
        "schema_name = 'main') where name = ?", [name]).fetchall()[0][0])
