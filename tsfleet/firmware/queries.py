"""Named SQL queries of the firmware domain, kept in ``sql/queries/firmware_<name>.sql``."""

from __future__ import annotations

from functools import cache

from tsfleet.store import sql_root


@cache
def query(name: str) -> str:
    """The text of ``sql/queries/firmware_<name>.sql``."""
    return (sql_root() / "queries" / f"firmware_{name}.sql").read_text(encoding="utf-8")
