"""The environment domain's parametrized SQL, kept in ``sql/*.sql`` beside this file.

Views live in the project's ``sql/views``; these are the queries that take
parameters (window, gap limit, constants), run by :mod:`tsfleet.environment`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import duckdb
import pyarrow as pa

from tsfleet.store import quote_ident

_DIR = Path(__file__).resolve().parent / "sql"


@cache
def sql(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    return (_DIR / f"{name}.sql").read_text(encoding="utf-8")


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None) -> pa.Table:
    """Run query ``name`` with named ``$params``; returns an Arrow table."""
    return con.sql(sql(name), params=params or {}).to_arrow_table()


def temp_table(con: duckdb.DuckDBPyConnection, table: str, name: str,
               params: dict | None = None) -> None:
    """Materialize query ``name`` as temporary table ``table`` (replacing it)."""
    con.execute(f"create or replace temp table {quote_ident(table)} as {sql(name)}", params or {})
