"""Per-device views copied into tables after each analysis run, for the device card.

The findings views and some state views compute over whole result tables; a
device card that filtered them per call took 20-170 ms a section. After a
domain's analysis the runner copies them into ``card_<view>`` tables (same
columns, same grain), so a card is a handful of small table lookups. They are as
fresh as the last analysis run of their domain (see ``freshness``).
"""

from __future__ import annotations

from tsfleet.store import quote_ident as q
from tsfleet.store import transaction

#: domain -> views copied after its analysis
CARD_VIEWS: dict[str, tuple[str, ...]] = {
    "power": ("power_findings", "battery_state"),
    "firmware": ("firmware_findings", "firmware_device_status"),
    "calibration": ("calibration_findings",),
    "environment": ("environment_findings",),
    "network": ("network_findings", "network_attachment"),
}


def card_table(view: str) -> str:
    return f"card_{view}"


def refresh_card_tables(con, domain: str) -> None:
    """Copy ``domain``'s card views into their tables, in one transaction."""
    views = [v for v in CARD_VIEWS.get(domain, ()) if _exists(con, v)]
    if not views:
        return
    with transaction(con):
        for view in views:
            table = card_table(view)
            con.execute(f"create or replace table {q(table)} as select * from {q(view)}")
            con.execute(f"comment on table {q(table)} is "
                        f"'Grain: as view {view}. A copy made after the last {domain} "
                        f"analysis run, for the device card.'")


def _exists(con, name: str) -> bool:
    return bool(con.execute("select count(*) from duckdb_views() where view_name = ? "
                            "and schema_name = 'main'", [name]).fetchone()[0])
