"""Work orders: open findings that need a person, merged into one order per site visit.

This is the one maintenance planner (STYLE 17): battery replacements, recalibrations,
firmware and gateway work of a site land in one schedule, computed as of one instant
(``at``, see :mod:`tsfleet.clock`). Items are the rows of every ``*_findings`` view with
an ``action``. Per site, the most urgent item opens a visit, and every item due within
``horizon_days`` of it joins that visit, so a technician goes once and does everything
there; items due later open the next visit. The visit is due when its most urgent item
is, and never before ``at``: an overdue item is shown as overdue (its own ``due_at``
stays) and folded into the next visit of its site. ``tsfleet power plan`` and
``tsfleet calibration schedule`` are views of this plan.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from tsfleet.alerts.evaluate import existing_relations, sql_text
from tsfleet.alerts.ruleset import CONTRACT_COLUMNS
from tsfleet.errors import InvalidParameter
from tsfleet.results import write_result
from tsfleet.rows import Rows
from tsfleet.store import quote_ident as q

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def findings_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every relation named ``*_findings`` that has the contract columns."""
    return sorted(name for name, cols in existing_relations(con).items()
                  if name.endswith("_findings") and set(CONTRACT_COLUMNS) <= cols)


def plan(con: duckdb.DuckDBPyConnection, at: datetime, horizon_days: float = 30.0,
         params: dict | None = None) -> int:
    """Recompute ``work_orders`` and ``work_order_items``; returns the number of orders."""
    items, orders, params = compute(con, at, horizon_days, params)
    write_result(con, "work_order_items", items, params=params, computed_at=at)
    write_result(con, "work_orders", orders, params=params, computed_at=at)
    return orders.num_rows


def compute(con: duckdb.DuckDBPyConnection, at: datetime, horizon_days: float = 30.0,
            params: dict | None = None) -> tuple[pa.Table, pa.Table, dict]:
    """The plan as of ``at``, stored nowhere: its items (with their ``workorder_id``), its
    orders and its parameters. A visit sharing items with a stored order keeps its id."""
    if horizon_days < 0:
        raise InvalidParameter(f"horizon_days must be >= 0, got {horizon_days:g}")
    views = findings_views(con)
    cols = ", ".join(q(c) for c in CONTRACT_COLUMNS)
    union = " union all ".join(f"select {cols} from {q(v)}" for v in views) or (
        "select " + ", ".join(f"null::{t} as {q(c)}" for c, t in CONTRACT_COLUMNS.items())
        + " where false")
    items = con.sql(sql_text("workorder_items").replace("{findings}", union),
                    params={"at": at}).to_arrow_table()
    params = {"horizon_days": horizon_days, "views": views, **(params or {})}
    previous = dict(con.execute("select item_id, workorder_id from work_order_items").fetchall())
    orders, order_of = _visits(items, timedelta(days=horizon_days), previous, at)
    return items.append_column("workorder_id", pa.array(order_of, pa.string())), orders, params


#: The stored plan's tables: (orders, items).
STORED = ("work_orders", "work_order_items")


@contextmanager
def preview(con: duckdb.DuckDBPyConnection, at: datetime, horizon_days: float = 30.0,
            params: dict | None = None) -> Iterator[tuple[str, str]]:
    """The plan as of ``at`` as two relations of this connection only, named like
    :data:`STORED` and read by :func:`work_orders` and :func:`work_order_rows` through
    ``tables``; the stored plan is untouched (a read-only store can preview)."""
    items, orders, _ = compute(con, at, horizon_days, params)
    stamp = pa.array([at] * orders.num_rows, pa.timestamp("us"))
    names = ("_tsf_preview_orders", "_tsf_preview_items")
    con.register(names[0], orders.append_column("computed_at", stamp))
    con.register(names[1], items.append_column(
        "computed_at", pa.array([at] * items.num_rows, pa.timestamp("us"))))
    try:
        yield names
    finally:
        for name in names:
            con.unregister(name)


def _visits(items: pa.Table, horizon: timedelta, previous: dict[str, str],
            at: datetime) -> tuple[pa.Table, list[str]]:
    """Greedy per site over items sorted by due date: a visit starts at its first item's
    due date, or at ``at`` when that is past, and takes all items due within ``horizon``
    of its start (so every overdue item of a site joins its next visit). Sequential by
    nature, hence Python (items are few).

    A visit keeps the id of the previous plan's order that shared most of its items, so
    the id (the ticket's correlation key) survives items joining or leaving; a visit with
    no such predecessor gets a new id from its site and most urgent item."""
    site = items.column("site").to_pylist()
    due = items.column("due_at").to_pylist()
    item_id = items.column("item_id").to_pylist()
    severity = items.column("severity").to_pylist()
    action = items.column("action").to_pylist()
    order_of: list[str] = [""] * len(site)
    out: dict[str, list] = {k: [] for k in ("workorder_id", "site", "visit_no", "due_at",
                                            "severity", "n_items", "actions", "revision")}
    i = 0
    visit_no = 0
    taken: set[str] = set()
    while i < len(site):
        if i == 0 or site[i] != site[i - 1]:
            visit_no = 0
        visit_no += 1
        start = max(due[i], at)
        j = i
        while j < len(site) and site[j] == site[i] and max(due[j], at) <= start + horizon:
            j += 1
        members = range(i, j)
        before = Counter(previous[item_id[k]] for k in members if item_id[k] in previous)
        reusable = [w for w, _ in before.most_common() if w not in taken]
        wo = reusable[0] if reusable else _new_id(site[i], item_id[i], taken)
        taken.add(wo)
        revision = hashlib.md5("\n".join(sorted(item_id[k] for k in members)).encode()
                               + due[i].strftime("%Y-%m-%d").encode()).hexdigest()[:12]
        for k in members:
            order_of[k] = wo
        counts = Counter(action[k] for k in members)
        out["workorder_id"].append(wo)
        out["site"].append(site[i])
        out["visit_no"].append(visit_no)
        out["due_at"].append(start)
        out["severity"].append(min((severity[k] for k in members), key=SEVERITY_ORDER.get))
        out["n_items"].append(j - i)
        out["actions"].append(", ".join(f"{a}:{n}" for a, n in sorted(counts.items())))
        out["revision"].append(revision)
        i = j
    table = pa.table({k: (pa.array(v, pa.timestamp("us")) if k == "due_at" else
                          pa.array(np.asarray(v, dtype=np.int32)) if k in ("visit_no", "n_items")
                          else pa.array(v, pa.string())) for k, v in out.items()})
    return table, order_of


def _new_id(site: str, item_id: str, taken: set[str]) -> str:
    """A new visit's id, from its site and most urgent item, never one of this plan's
    (``taken``). The item may have led an order of the previous plan that a visit before
    this one kept: the first candidate is then that order's id, already taken, and a
    counter gives the next. (A previous order the item led and nobody kept is this
    visit's to keep, so it never gets here.)"""
    n = 0
    while True:
        key = f"{site}\x1f{item_id}" + (f"\x1f{n}" if n else "")
        wo = "wo-" + hashlib.md5(key.encode()).hexdigest()[:12]
        if wo not in taken:
            return wo
        n += 1


def work_orders(con: duckdb.DuckDBPyConnection, site: str | None = None,
                tables: tuple[str, str] = STORED) -> list[dict]:
    """The planned work orders, each with its ``items`` (most urgent first); ``tables``:
    the orders and items to read (the stored plan, or a :func:`preview`)."""
    o_tab, i_tab = (q(t) for t in tables)
    orders = _rows(con, "select workorder_id, site, visit_no, due_at, severity, n_items, "
                        "actions, revision, computed_at as as_of, "
                        f"(select count(*) from {i_tab} i where i.workorder_id = "
                        "o.workorder_id and i.due_at < o.computed_at) as n_overdue "
                        f"from {o_tab} o "
                        "where ? is null or site = ? order by due_at, site, visit_no",
                   [site, site])
    items = _rows(con, "select workorder_id, item_id, domain, finding, subject_kind, subject_id, "
                       "zone, severity, action, due_at, due_at < computed_at as is_overdue, "
                       f"value, summary from {i_tab} "
                       "order by due_at, item_id")
    by_order: dict[str, list[dict]] = {}
    for it in items:
        by_order.setdefault(it.pop("workorder_id"), []).append(it)
    for o in orders:
        o["items"] = by_order.get(o["workorder_id"], [])
    return orders


def work_order_rows(con: duckdb.DuckDBPyConnection, site: str | None = None,
                    domain: str | None = None, tables: tuple[str, str] = STORED) -> list[dict]:
    """Flat rows for CSV: one per item (of ``domain`` if given), with its work order's
    columns first and the plan's instant (``as_of``) on every row."""
    o_tab, i_tab = (q(t) for t in tables)
    return _rows(con, "select o.computed_at as as_of, o.workorder_id, o.site, o.visit_no, "
                      "o.due_at as visit_due_at, o.severity as visit_severity, i.item_id, "
                      "i.domain, i.finding, i.subject_kind, i.subject_id, i.zone, i.severity, "
                      "i.action, i.due_at, i.due_at < o.computed_at as is_overdue, i.value, "
                      f"i.summary from {o_tab} o join {i_tab} i "
                      "using (workorder_id) where (? is null or o.site = ?) "
                      "and (? is null or i.domain = ?) "
                      "order by o.due_at, o.site, o.visit_no, i.due_at, i.item_id",
                 [site, site, domain, domain])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Rows:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return Rows((dict(zip(names, r, strict=True)) for r in cur.fetchall()), names)
