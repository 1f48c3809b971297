"""The environment domain's parametrized SQL, kept in ``sql/*.sql`` beside this file.

Views live in the project's ``sql/views``; these are the queries that take
parameters (window, gap limit, constants), run by :mod:`tsfleet.environment`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from tsfleet.store import query_text

_DIR = Path(__file__).resolve().parent / "sql"


def sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return query_text(_DIR, name)


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> pa.Table:
    """Run query ``name`` with named ``$params``; returns an Arrow table."""
    return con.sql(sql(name), params=params or {}).to_arrow_table()
