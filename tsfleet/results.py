"""Writing computed results back as tables, with provenance.

Every result table has ``computed_at`` and ``params`` (JSON of the arguments
that produced it), so a reader of the DuckDB file knows how fresh and how
derived a number is. Domains call :func:`write_result`; it moves columns in
bulk and replaces either the whole table or only the rows of the items that
were recomputed (``key``), which is how incremental runs merge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from tsfleet.store import quote_ident as q
from tsfleet.store import transaction


def to_arrow(data: pa.Table | Mapping) -> pa.Table:
    """A dict of numpy arrays or lists -> Arrow table: datetimes as microseconds,
    object arrays (strings) as lists, NaN in float columns as null."""
    if isinstance(data, pa.Table):
        return data
    cols = {}
    for k, v in data.items():
        arr = np.asarray(v)
        if arr.dtype.kind == "M":
            cols[k] = pa.array(arr.astype("datetime64[us]"))
        elif arr.dtype == object:
            cols[k] = pa.array(arr.tolist())
        else:
            cols[k] = pa.array(arr, from_pandas=True)  # NaN -> null
    return pa.table(cols)


def now_utc() -> datetime:
    """The current time, UTC, without tzinfo (how tsfleet stores timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def write_result(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data: pa.Table | Mapping[str, Sequence | np.ndarray],
    *,
    params: Mapping[str, object],
    key: Sequence[str] | None = None,
    computed_at: datetime | None = None,
) -> int:
    """Store ``data`` in result table ``table``; returns the number of rows written.

    Without ``key`` the table's rows are all replaced. With ``key`` only rows
    whose key appears in ``data`` are replaced (an incremental merge).
    Columns of the table missing from ``data`` are set to NULL, except
    ``computed_at`` and ``params``, which are filled in here.
    """
    if not isinstance(data, pa.Table):
        data = pa.table(
            {k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in data.items()}
        )
    stamp = computed_at or now_utc()
    columns = [
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'main' "
            "and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
    ]
    select = []
    for col in columns:
        if col == "computed_at":
            select.append("?::TIMESTAMP")
        elif col == "params":
            select.append("?::VARCHAR")
        elif col in data.column_names:
            select.append(q(col))
        else:
            select.append("NULL")
    name = "_tsf_result"
    con.complete()
    con.register(name, data)
    try:
        with transaction(con):
            if key:
                on = " and ".join(f"t.{q(k)} = r.{q(k)}" for k in key)
                con.execute(
                    f"delete from {q(table)} t where exists (select 1 from {name} r where {on})"
                )
            else:
                con.execute(f"delete from {q(table)}")
            con.execute(
                f"insert into {q(table)} ({', '.join(q(c) for c in columns)}) "
                f"select {', '.join(select)} from {name}",
                [
                    v
                    for c in columns
                    if c in ("computed_at", "params")
                    for v in (
                        [stamp]
                        if c == "computed_at"
                        else [json.dumps(dict(params), default=str, sort_keys=True)]
                    )
                ],
            )
    finally:
        con.complete()
        con.unregister(name)
    return data.num_rows
