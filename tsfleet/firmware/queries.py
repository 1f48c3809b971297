"""Named SQL queries of the firmware domain, kept in ``sql/<name>.sql`` beside this file."""

from __future__ import annotations

from pathlib import Path

from tsfleet.store import query_text

_DIR = Path(__file__).resolve().parent / "sql"


def query(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return query_text(_DIR, name)
