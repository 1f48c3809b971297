"""Consistent snapshots of the store, for readers that must not wait for the writer.

DuckDB lets one process write a file, and lets read-only processes in only
while nobody writes. A dashboard therefore reads a *snapshot*: a separate
DuckDB file written by the process that holds the store, in one read
transaction (so every table is copied as of the same instant while ingest goes
on), beside the target and renamed into place when complete.

What a snapshot holds:

- every table of the store (all schemas), rows, column types, table and column
  comments; not constraints, indexes or sequences: it is for reading;
- every view, re-created as a view (``views="keep"``, the default). Analytic
  results are tables already (the domains write them with ``computed_at`` and
  ``params``), and the views are plain SQL that DuckDB 1.x runs too (a test runs
  every published view in DuckDB 1.x against a v1.0.0 snapshot). Materializing
  them all would copy the readings again for each rollup view (readings_hourly,
  readings_history, ...): 9x slower and 3x larger, measured;
- or, with ``views="materialize"``, every view computed into a table as of the
  snapshot, its grain and description moved into the table comment: for readers
  that must not compute, or views that use ``now()`` and should be pinned;
- the ``catalog`` and ``catalog_columns`` views, kept as views in both modes,
  so that they describe the snapshot itself;
- ``snapshot_info``: one row saying when, from what and how it was taken.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb

from tsfleet.errors import InvalidParameter, StoreError
from tsfleet.ingest.rules import sql_literal
from tsfleet.results import now_utc
from tsfleet.share.atomic import fsync_dir, remove_quietly, replace_file, staging_path
from tsfleet.store import CONNECT_CONFIG
from tsfleet.store import quote_ident as q

ViewMode = Literal["materialize", "keep"]
VIEW_MODES = ("materialize", "keep")
#: Views that read only DuckDB metadata: always kept as views, to describe the snapshot.
METADATA_VIEWS = ("catalog", "catalog_columns")
_STORAGE_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+$")

_INFO_COMMENT = ("Grain: one row. When (taken_at, UTC), from which store (source) and with "
                 "which DuckDB storage version this snapshot was written; n_readings is the "
                 "readings count as of taken_at.")


@dataclass(frozen=True)
class SnapshotReport:
    """What :func:`take_snapshot` wrote."""

    path: str
    storage_version: str
    views: str
    taken_at: datetime
    n_tables: int
    n_materialized: int
    n_views: int
    n_readings: int
    seconds: float
    size_bytes: int

    def __str__(self) -> str:
        return (f"snapshot {self.path}: {self.n_tables} tables, {self.n_materialized} "
                f"materialized views, {self.n_views} views, {self.n_readings:,} readings, "
                f"{self.size_bytes / 1e6:.1f} MB, storage {self.storage_version}, "
                f"{self.seconds:.1f} s")


def check_storage_version(version: str | None) -> str:
    """Normalise a storage version: None and 'latest' mean this DuckDB's own format.

    >>> check_storage_version("v1.0.0"), check_storage_version(None)
    ('v1.0.0', 'latest')
    """
    if version is None or version == "latest":
        return "latest"
    if not isinstance(version, str) or not _STORAGE_VERSION_RE.match(version):
        raise InvalidParameter(f"storage version must look like 'v1.0.0' or be 'latest', "
                               f"got {version!r}")
    return version


def take_snapshot(con: duckdb.DuckDBPyConnection, out: str | Path, *,
                  storage_version: str | None = None, views: ViewMode = "keep",
                  source: str | None = None,
                  pin: Callable[[Callable[[], object]], object] | None = None) -> SnapshotReport:
    """Write a consistent copy of the store behind ``con`` to ``out``, atomically.

    Runs on its own cursor, so the connection's owner may keep ingesting (from
    another thread) while the copy is taken. ``storage_version='v1.0.0'`` writes
    a file DuckDB 1.x can open. ``pin`` runs the start of the copy's read
    transaction (a few milliseconds) where the writer allows it: ``tsfleet serve``
    passes ``Writer.call``, so the copy starts between two batches and every batch
    (several transactions: readings, unmapped fields, rejected payloads) is in it
    whole or not at all; the copy itself then runs here, beside ingest.

    >>> import tempfile, os
    >>> from tsfleet import Fleet
    >>> fleet = Fleet(memory=True)
    >>> out = os.path.join(tempfile.mkdtemp(), "snap.duckdb")
    >>> take_snapshot(fleet.con, out, storage_version="v1.0.0").n_materialized
    0
    """
    version = check_storage_version(storage_version)
    if views not in VIEW_MODES:
        raise InvalidParameter(f"views must be one of {', '.join(VIEW_MODES)}, got {views!r}")
    target = Path(out).resolve()
    if source and Path(source).resolve() == target:
        raise InvalidParameter(f"the snapshot target {target} is the store itself")
    wal = target.with_name(target.name + ".wal")
    if wal.exists():
        raise StoreError(f"{wal} exists: someone opened the snapshot read-write; remove it "
                         "(a snapshot is for read-only readers) before replacing the snapshot")
    if target.is_dir():
        raise InvalidParameter(f"the snapshot target {target} is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:          # a file on the way, a folder that may not be written
        raise StoreError(f"cannot create the folder of {out}: "
                         f"{(exc.strerror or str(exc)).lower()}") from None

    staged = staging_path(target)
    alias = f"tsfleet_snapshot_{uuid.uuid4().hex[:12]}"
    t0 = time.perf_counter()
    cur = con.cursor()
    attached, live = False, None
    try:
        live = cur.execute("select current_database()").fetchall()[0][0]
        options = "READ_ONLY false" + ("" if version == "latest" else ", STORAGE_VERSION ?")
        cur.execute(f"attach ? as {q(alias)} ({options})",
                    [str(staged)] + ([] if version == "latest" else [version]))
        attached = True
        (pin or _call)(lambda: _begin(cur))
        counts = _copy(cur, live, alias, views, version, source)
        cur.execute("commit")
        cur.execute(f"detach {q(alias)}")
        attached = False
        _release(staged)
        replace_file(staged, target)
    except BaseException as exc:
        _abort(cur, live, alias, attached)
        if attached or staged.exists():
            with contextlib.suppress(StoreError, duckdb.Error):
                _release(staged, timeout_s=30)
        remove_quietly(staged, staged.with_name(staged.name + ".wal"))
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"snapshot to {target} failed: {str(exc).splitlines()[0]}") from exc
        raise
    finally:
        cur.close()
    fsync_dir(target.parent)
    return SnapshotReport(path=str(target), storage_version=version, views=views,
                          seconds=time.perf_counter() - t0, size_bytes=target.stat().st_size,
                          **counts)


def _call(fn: Callable[[], object]) -> object:
    return fn()


def _begin(cur: duckdb.DuckDBPyConnection) -> None:
    """Open the read transaction and fix its instant: DuckDB starts a transaction on a
    database at its first access, not at BEGIN, so read something of the store now."""
    cur.execute("begin transaction")
    cur.execute("select count(*) from schema_version").fetchall()


def _copy(cur: duckdb.DuckDBPyConnection, live: str, alias: str, views: str, version: str,
          source: str | None) -> dict:
    """Copy every object into ``alias`` inside the caller's transaction; returns counts."""
    taken_at = now_utc()
    objects = cur.execute(
        "select schema_name, name, kind, grain, description from catalog").fetchall()
    comments = _column_comments(cur)
    n_tables = n_materialized = 0
    kept: list[tuple[str, str]] = []
    for schema, name, kind, grain, description in objects:
        if schema != "main":
            cur.execute(f"create schema if not exists {q(alias)}.{q(schema)}")
        if kind == "view" and (views == "keep" or name in METADATA_VIEWS):
            kept.append((schema, name))
            continue
        dst = f"{q(alias)}.{q(schema)}.{q(name)}"
        cur.execute(f"create table {dst} as select * from {q(live)}.{q(schema)}.{q(name)}")
        if kind == "table":
            n_tables += 1
            comment = _table_comment(cur, live, schema, name)
        else:
            n_materialized += 1
            comment = (f"Grain: {grain or 'not stated'}. {description or ''} Materialized from "
                       f"the view {name} when the snapshot was taken.").replace("  ", " ")
        if comment:
            cur.execute(f"comment on table {dst} is {sql_literal(comment)}")
        for column, text in comments.get((schema, name), []):
            cur.execute(f"comment on column {dst}.{q(column)} is {sql_literal(text)}")
    _create_views(cur, live, alias, kept)
    n_readings = cur.execute(f"select count(*) from {q(alias)}.main.readings").fetchall()[0][0]
    info = f"{q(alias)}.main.snapshot_info"
    cur.execute(
        f"create table {info} as select ?::varchar as source, ?::timestamp as taken_at, "
        "?::varchar as storage_version, ?::varchar as views, ?::varchar as duckdb_version, "
        "?::bigint as n_readings",
        [source or ":memory:", taken_at, version, views, duckdb.__version__, n_readings])
    cur.execute(f"comment on table {info} is {sql_literal(_INFO_COMMENT)}")
    return {"taken_at": taken_at, "n_tables": n_tables, "n_materialized": n_materialized,
            "n_views": len(kept), "n_readings": n_readings}


def _column_comments(cur: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list]:
    found: dict[tuple[str, str], list] = {}
    for schema, obj, column, comment in cur.execute(
            "select schema_name, object_name, column_name, comment from catalog_columns "
            "where comment is not null and comment <> ''").fetchall():
        found.setdefault((schema, obj), []).append((column, comment))
    return found


def _table_comment(cur: duckdb.DuckDBPyConnection, live: str, schema: str, name: str) -> str:
    rows = cur.execute("select comment from duckdb_tables() where database_name = ? and "
                       "schema_name = ? and table_name = ?", [live, schema, name]).fetchall()
    return rows[0][0] if rows and rows[0][0] else ""


def _create_views(cur: duckdb.DuckDBPyConnection, live: str, alias: str,
                  kept: list[tuple[str, str]]) -> None:
    """Re-create views in the snapshot from their SQL, dependencies first.

    tsfleet's views are created in the order of their sql/views file numbers (a
    view reads only lower-numbered ones), which published_objects records; other
    views follow in catalog order. (View oids are no guide: DuckDB renumbers
    them when it loads a file.)
    """
    if not kept:
        return
    rows = cur.execute(
        "select v.schema_name, v.view_name, v.sql, v.comment from duckdb_views() v "
        "left join published_objects p on v.schema_name = 'main' and p.name = v.view_name "
        "where v.database_name = ? and not v.internal "
        "order by try_cast(split_part(p.source_file, '_', 1) as integer) nulls last, v.view_oid",
        [live]).fetchall()
    wanted = set(kept)
    cur.execute(f"use {q(alias)}")
    try:
        for schema, name, sql, comment in rows:
            if (schema, name) not in wanted:
                continue
            cur.execute(sql)
            if comment:
                cur.execute(f"comment on view {q(schema)}.{q(name)} is {sql_literal(comment)}")
    finally:
        with contextlib.suppress(duckdb.Error):  # keep the error that brought us here
            cur.execute(f"use {q(live)}")


def _release(staged: Path, timeout_s: float = 300.0) -> None:
    """Wait until DuckDB has let go of the detached file, and fold any WAL into it.

    DETACH of the new file is deferred while a transaction that began when it was
    attached is still open (the ingest we must not block), and its checkpoint is
    skipped while another write transaction is active, leaving a WAL beside it. A
    file plus a WAL cannot be renamed atomically. So the file is opened on its own
    (a separate DuckDB instance, which succeeds only once the live instance has
    closed it); that open replays and checkpoints any log, keeping the file's
    storage version. Then nothing else holds or changes the file.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con = duckdb.connect(str(staged), config=CONNECT_CONFIG)
            break
        except duckdb.ResourceInUseException as exc:
            if time.monotonic() > deadline:
                raise StoreError(f"the snapshot {staged} stayed attached for {timeout_s:.0f} s "
                                 "after detach (a long transaction holds it)") from exc
            time.sleep(0.02)
    with con:
        if staged.with_name(staged.name + ".wal").exists():
            con.execute("checkpoint")
    if staged.with_name(staged.name + ".wal").exists():
        raise StoreError(f"the snapshot {staged} kept a write-ahead log after a checkpoint")


def _abort(cur: duckdb.DuckDBPyConnection, live: str | None, alias: str,
           attached: bool) -> None:
    with contextlib.suppress(duckdb.Error):
        cur.execute("rollback")
    if live:
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"use {q(live)}")
    if attached:
        with contextlib.suppress(duckdb.Error):
            cur.execute(f"detach {q(alias)}")
