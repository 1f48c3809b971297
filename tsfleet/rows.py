"""Rows that know their columns, also when there is none: what ``Fleet.query`` returns.

A list of dicts names its columns in the keys of its rows, so an empty one names none,
and a CSV of no rows would lose its header. :class:`Rows` is that list with the columns
beside it; :func:`mapped` reshapes rows (select, rename, convert) and keeps them.
Standard library only: :mod:`tsfleet.remote` and the CLI import it.

>>> rows = Rows([], ["device_id", "level_pct"])
>>> rows == [], rows.columns
(True, ['device_id', 'level_pct'])
>>> mapped(rows, lambda r: {"device": r["device_id"]}).columns
['device']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


class Rows(list):
    """A list of row dicts and ``columns``, their names in order (with no row, the names
    the query gave; with rows, the first row's keys unless given)."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (),
                 columns: Sequence[str] | None = None):
        super().__init__(rows)
        self.columns: list[str] = (list(columns) if columns is not None
                                   else list(self[0]) if self else [])


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The column names of ``rows``: its first row's keys, else those it knows (a
    :class:`Rows`), else none."""
    if rows:
        return list(rows[0])
    return list(getattr(rows, "columns", []))


def mapped(rows: Sequence[dict[str, Any]],
           fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Rows:
    """Each row through ``fn``, as :class:`Rows`. With no row, the columns are those of
    ``fn`` applied to a row of nulls, so ``fn`` must take a null in any column (a
    selection, a renaming, a conversion that passes None on)."""
    out = [fn(r) for r in rows]
    if out:
        return Rows(out)
    cols = columns_of(rows)
    return Rows([], list(fn(dict.fromkeys(cols))) if cols else [])
