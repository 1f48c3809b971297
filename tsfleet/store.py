"""The DuckDB store: connection settings, numbered SQL migrations and view loading.

Tables live in ``sql/tables/NNN_name.sql`` and are applied once each, in
numeric order, recorded in ``schema_version``. Views live in
``sql/views/NNN_name.sql`` and are re-created whenever the set of view files
changes (their combined checksum is kept in ``schema_views``), because a view
holds no data. Each file starts with a header comment; its ``-- grain:`` line
and first sentence feed the ``catalog`` of published objects.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

from tsfleet.errors import StoreError

_FILE_RE = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")

#: DuckDB settings every tsfleet connection uses. Nothing may be downloaded at
#: run time; only the statically linked json, parquet and icu are used.
CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

#: Where a rejected row goes, with its raw text: ``insert into {QUARANTINE_INTO} select``
#: seven values in this order. ``quarantine`` is a view (migration 991) over this table.
QUARANTINE_INTO = "quarantine_rows (batch_id, kind, source, reason, detail, raw, quarantined_at)"


def quote_ident(name: str) -> str:
    """Quote one SQL identifier (table, view or column name) for DuckDB.

    >>> quote_ident('readings')
    '"readings"'
    >>> quote_ident('we"ird')
    '"we""ird"'
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise StoreError(f"an identifier must be a non-empty string, got {name!r}")
    return '"' + name.replace('"', '""') + '"'


#: id(connection) -> [joined blocks, rolled back] for the connections inside
#: :func:`transaction` (a connection is used by one thread at a time)
_OPEN: dict[int, list] = {}


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB transaction: committed when the block ends, rolled back (and the
    error re-raised) when it raises.

    A block opened on a connection already inside one joins it: the outermost
    block commits everything at once (the live writer stores a whole batch, every
    table of it, in one transaction). A joined block that raises rolls the whole
    transaction back at once (statements after it, such as a clean-up, then run
    outside any transaction), and the outer block then refuses to commit.

    >>> con = connect(None)
    >>> with transaction(con):
    ...     _ = con.execute("create table t (x int)")
    ...     with transaction(con):
    ...         _ = con.execute("insert into t values (1)")
    >>> con.execute("select count(*) from t").fetchall()[0]
    (1,)
    """
    key = id(con)
    state = _OPEN.get(key)
    if state is not None:  # joined: the outermost block commits or rolls back
        state[0] += 1
        try:
            yield con
        except BaseException:
            _roll_back_once(con, state)
            raise
        finally:
            state[0] -= 1
        return
    con.execute("BEGIN TRANSACTION")
    state = _OPEN[key] = [0, False]
    try:
        yield con
        if state[1]:
            raise StoreError("the transaction was rolled back: a statement inside it failed")
        con.execute("COMMIT")
    except BaseException:
        _roll_back_once(con, state)
        raise
    finally:
        del _OPEN[key]


def _roll_back_once(con: duckdb.DuckDBPyConnection, state: list) -> None:
    """Roll the transaction back unless a joined block already did (``state[1]``)."""
    if not state[1]:
        state[1] = True
        con.execute("ROLLBACK")


@dataclass(frozen=True)
class SqlFile:
    """One numbered SQL file of ``sql/tables`` or ``sql/views``."""

    number: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def header(self) -> dict[str, str]:
        """``grain``, ``description`` and ``internal`` (the reason a view is an internal
        helper, or "") parsed from the leading comment block."""
        description: list[str] = []
        grain = internal = ""
        for line in self.text.splitlines():
            if not line.startswith("--"):
                break
            body = line[2:].strip()
            if body.lower().startswith("internal:"):
                internal = body.split(":", 1)[1].strip() or "internal"
            elif body.lower().startswith("grain:"):
                grain = body.split(":", 1)[1].strip()
            elif body and not grain and not body.startswith("columns"):
                description.append(body)
        return {"grain": grain, "description": " ".join(description), "internal": internal}


@cache
def query_text(folder: Path, name: str) -> str:
    """The text of ``<folder>/<name>.sql``: a domain's parametrized query (not a view),
    kept in a ``sql/`` folder beside its package."""
    return (folder / f"{name}.sql").read_text(encoding="utf-8")


def sql_root() -> Path:
    """The ``sql/`` folder: inside an installed wheel, else beside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sql", here.parent / "sql"):
        if (candidate / "tables").is_dir():
            return candidate
    raise StoreError(f"tsfleet's sql/ folder is missing (looked in {here} and {here.parent})")


@cache
def sql_files(folder: str) -> tuple[SqlFile, ...]:
    """The numbered files of ``sql/<folder>``, sorted by their integer prefix."""
    found = []
    for path in (sql_root() / folder).iterdir():
        m = _FILE_RE.match(path.name)
        if m:
            found.append(SqlFile(int(m.group(1)), m.group(2), path))
    numbers = [f.number for f in found]
    if len(numbers) != len(set(numbers)):
        raise StoreError(f"two files in sql/{folder} share a number: {sorted(numbers)}")
    return tuple(sorted(found, key=lambda f: f.number))


def views_checksum() -> str:
    """Of the view files and the declared finding codes: the objects re-made on change."""
    h = hashlib.sha256()
    for f in sql_files("views"):
        h.update(f.path.name.encode())
        h.update(f.text.encode())
    h.update(codes_path().read_bytes())
    return h.hexdigest()


def codes_path() -> Path:
    """``sql/finding_codes.csv``: domain, code, severity, meaning."""
    return sql_root() / "finding_codes.csv"


def _load_finding_codes(con: duckdb.DuckDBPyConnection) -> None:
    with codes_path().open(encoding="utf-8", newline="") as fh:
        rows = [(r["domain"], r["code"], r["severity"], r["meaning"])
                for r in csv.DictReader(fh)]
    con.execute("delete from finding_codes")
    con.executemany("insert into finding_codes values (?, ?, ?, ?)", rows)


def connect(path: str | None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open DuckDB with tsfleet's settings (UTC session, no downloads)."""
    try:
        con = duckdb.connect(path or ":memory:", read_only=read_only, config=CONNECT_CONFIG)
    except duckdb.IOException as exc:
        text = " ".join(str(exc).split())
        if path and "lock" in text.lower():
            from tsfleet.remote import find_server
            advert = find_server(path)
            if advert is not None:
                raise StoreError(f"cannot open the store {path!r}: tsfleet serve (pid "
                                 f"{advert['pid']}) holds it; the tsfleet commands go through "
                                 f"it, and so does Fleet.connect({path!r})") from exc
        raise StoreError(f"cannot open the store {path!r}: {text}") from exc
    con.execute("SET TimeZone = 'UTC'")
    return con


def pending_migrations(con: duckdb.DuckDBPyConnection) -> list[SqlFile]:
    """The migrations to apply, counting a renumbered one at its number now
    (:func:`renumber_applied`)."""
    moves = _renumbered(con)
    applied = ({*_applied_versions(con)} - set(moves)) | {f.number for f in moves.values()}
    return [f for f in sql_files("tables") if f.number not in applied]


def _applied_versions(con: duckdb.DuckDBPyConnection) -> dict[int, str | None]:
    """version -> the checksum recorded when it was applied."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'main' and table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    return dict(con.execute("select version, checksum from schema_version").fetchall())


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def migrations_lock() -> dict[str, dict]:
    """``sql/migrations.lock.json``: file name -> {sha256, superseded} as released."""
    path = sql_root() / "migrations.lock.json"
    return json.loads(path.read_text(encoding="utf-8"))["migrations"]


def _renumbered(con: duckdb.DuckDBPyConnection) -> dict[int, SqlFile]:
    """Applied versions whose migration now has another number: {old version: its file}.

    Two lines of work once numbered different migrations alike (session 26: 992 was both
    ``metric_declarations_lower`` and ``unmapped_payload_pieces``); the second line's
    migrations were renumbered, text unchanged, and the lock lists each one's earlier
    number (``renumbered_from``). A store that applied the text under its earlier number
    holds that migration under the old version: it matches by checksum, and the version
    it now has is free or held by another migration moving away too."""
    applied = _applied_versions(con)
    lock = migrations_lock()
    moves = {}
    for f in sql_files("tables"):
        for old in lock.get(f.path.name, {}).get("renumbered_from", {}):
            if applied.get(int(old)) == checksum(f.text) and int(old) != f.number:
                moves[int(old)] = f
    return {old: f for old, f in moves.items()
            if f.number not in applied or f.number in moves}


def renumber_applied(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Record the migrations a store applied under an earlier number (:func:`_renumbered`)
    under the number they have now, in one transaction; the migrations numbered as they
    were then apply as any pending one. Returns the file names moved."""
    moves = _renumbered(con)
    if not moves:
        return []
    with transaction(con):
        rows = {v: con.execute("select applied_at from schema_version where version = ?",
                               [v]).fetchall()[0][0] for v in moves}
        con.execute("delete from schema_version where version in (select unnest(?))",
                    [list(moves)])
        for old, f in moves.items():
            con.execute("insert into schema_version (version, name, checksum, applied_at) "
                        "values (?, ?, ?, ?)", [f.number, f.name, checksum(f.text), rows[old]])
    return [f.path.name for f in moves.values()]


def check_applied(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a store whose applied migrations differ from the files of this version.

    An applied migration is never edited: the checksum recorded when a migration was
    applied must be its file's, or a text the lock lists as superseded (edits made
    before the lock existed, which a later migration repairs), or the text of a migration
    renumbered since (:func:`renumber_applied` moves it). A mismatch names the file; it
    means this code was changed without a new migration.
    """
    files = {f.number: f for f in sql_files("tables")}
    lock = migrations_lock()
    moving = _renumbered(con)
    for version, recorded in _applied_versions(con).items():
        f = files.get(version)
        if f is None or recorded is None or version in moving:
            continue  # a newer release's migration, a store from before checksums, or renumbered
        known = {checksum(f.text), *lock.get(f.path.name, {}).get("superseded", ())}
        if recorded not in known:
            raise StoreError(
                f"migration {f.path.name} was edited after this store applied it "
                f"(recorded checksum {recorded[:12]}, file {checksum(f.text)[:12]}); "
                "an applied migration must never change: add a new migration instead")


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending table migrations, then refresh views if their files changed.

    Returns the names of the migrations applied now.
    """
    renumber_applied(con)
    check_applied(con)
    applied_now = []
    for f in pending_migrations(con):
        try:
            with transaction(con):
                con.execute(f.text)
                con.execute(
                    "insert into schema_version (version, name, checksum, applied_at) "
                    "values (?, ?, ?, now())",
                    [f.number, f.name, checksum(f.text)],
                )
        except duckdb.Error as exc:
            raise StoreError(f"migration {f.path.name} failed: {exc}") from exc
        applied_now.append(f.name)
    if views_outdated(con):
        refresh_views(con)
    return applied_now


def views_outdated(con: duckdb.DuckDBPyConnection) -> bool:
    # fetchall, not fetchone: a result left unfinished on the connection blocks the next
    # relation (con.sql) run on it ("connection has an unfinished result from execute()")
    rows = con.execute("select checksum from schema_views").fetchall()
    return not rows or rows[0][0] != views_checksum()


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """Drop every view tsfleet published before and create the current ones."""
    try:
        with transaction(con):
            old = [r[0] for r in con.execute("select name from published_objects "
                                             "where kind in ('view', 'internal_view')").fetchall()]
            for name in reversed(old):
                con.execute(f"drop view if exists {quote_ident(name)} cascade")
            con.execute("delete from published_objects where kind in ('view', 'internal_view')")
            for f in sql_files("views"):
                con.execute(f.text)
                con.execute(
                    "insert into published_objects (name, kind, grain, description, source_file) "
                    "values (?, ?, ?, ?, ?)",
                    [f.name, "internal_view" if f.header["internal"] else "view",
                     f.header["grain"], f.header["description"], f.path.name],
                )
            _load_finding_codes(con)
            con.execute("delete from schema_views")
            con.execute("insert into schema_views values (?, now())", [views_checksum()])
    except duckdb.Error as exc:
        raise StoreError(f"creating the views failed: {exc}") from exc
