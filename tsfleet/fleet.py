"""The one entry object: Fleet(path), Fleet(memory=True), Fleet(path, read_only=True)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tsfleet import store
from tsfleet.errors import (
    LINE_WIDTH,
    InvalidParameter,
    ReadOnlyStore,
    StoreError,
    UnknownKind,
    suggest,
    unknown_name,
)
from tsfleet.rows import Rows

if TYPE_CHECKING:  # ingest and the pydantic models load on first use (a fast CLI start)
    from tsfleet.alerts import Alerts
    from tsfleet.calibration import Calibration
    from tsfleet.domain import RunResult
    from tsfleet.environment import Environment
    from tsfleet.firmware import Firmware
    from tsfleet.ingest import IngestReport
    from tsfleet.ingest.pipeline import UnknownDevicePolicy
    from tsfleet.network import Network
    from tsfleet.power import Power

DEFAULT_DB = "fleet.duckdb"

#: Ingest kinds a domain evaluates as soon as they land: kind -> domain attribute
#: whose ``on_ingest(report)`` is called after the rows are committed.
INGEST_HOOKS = {"firmware_reports": "firmware", "firmware_releases": "firmware",
                "update_events": "firmware", "metrics": "metrics"}


def default_db_path() -> str:
    """``$TSFLEET_DB`` if set, else ``fleet.duckdb`` in the working directory."""
    return os.environ.get("TSFLEET_DB") or DEFAULT_DB


class Fleet:
    """A fleet store: a DuckDB file with tsfleet's tables, views and analyses.

    Opening creates the file if needed and applies pending migrations (never
    re-running applied ones). The domains are attributes: ``fleet.power``,
    ``fleet.firmware``, ``fleet.calibration``, ``fleet.environment``,
    ``fleet.network`` and ``fleet.alerts``.

    >>> fleet = Fleet(memory=True)
    >>> fleet.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
    ...                            "metric": "battery_pct", "value": 87}]).n_accepted
    1
    >>> fleet.query("select device_id, value from readings")
    [{'device_id': 'pump-17', 'value': 87.0}]
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        memory: bool = False,
        read_only: bool = False,
        unknown_devices: UnknownDevicePolicy = "accept",
    ):
        if memory and path is not None:
            raise StoreError("give either a path or memory=True, not both")
        if memory and read_only:
            raise StoreError("an in-memory store cannot be read-only")
        self.path: str | None = None if memory else str(path or default_db_path())
        self.read_only = read_only
        self.unknown_devices: UnknownDevicePolicy = unknown_devices
        if read_only and not Path(self.path).is_file():
            raise StoreError(f"cannot open {self.path} read-only: no such file")
        self.con: duckdb.DuckDBPyConnection = store.connect(self.path, read_only=read_only)
        if read_only:
            try:
                store.check_applied(self.con)
            except StoreError:
                self.con.close()
                raise
            pending = store.pending_migrations(self.con)
            if pending:
                names = ", ".join(f.path.name for f in pending)
                self.con.close()
                raise StoreError(
                    f"{self.path} needs migrations ({names}); open it once "
                    "without read_only to apply them"
                )
        else:
            self.applied_migrations = store.migrate(self.con)

    @classmethod
    def borrow(cls, con: duckdb.DuckDBPyConnection, path: str | None, *, read_only: bool,
               owns: bool, unknown_devices: UnknownDevicePolicy = "accept",
               pin=None) -> Fleet:
        """A Fleet on a connection opened elsewhere, with no migration run: how
        ``tsfleet serve`` hands its store to the commands of its control interface (a
        cursor of its connection, closed with the Fleet when ``owns``; ``pin``: where its
        snapshots start, see :func:`tsfleet.share.take_snapshot`)."""
        fleet = cls.__new__(cls)
        fleet.path, fleet.read_only, fleet.unknown_devices = path, read_only, unknown_devices
        fleet.con, fleet._owns_con, fleet.applied_migrations = con, owns, []
        fleet._pin = pin
        return fleet

    @staticmethod
    def connect(path: str | os.PathLike | None = None):
        """The store at ``path`` (default ``$TSFLEET_DB`` or fleet.duckdb), whoever holds it:
        a ``Fleet`` when nobody does, else a :class:`tsfleet.remote.ServedFleet` that runs
        queries and ingests through the ``tsfleet serve`` holding it.

        >>> # fleet = Fleet.connect("plant.duckdb"); fleet.query("select count(*) from readings")
        """
        from tsfleet.remote import connect
        return connect(path or default_db_path())

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "_owns_con", True):
            self.con.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Fleet({self.path or ':memory:'!r}{', read_only=True' if self.read_only else ''})"

    # -- data in -------------------------------------------------------------------
    def ingest(
        self,
        kind: str,
        source: Any,
        *,
        chunk_rows: int | None = None,
        unknown_devices: UnknownDevicePolicy | None = None,
        label: str | None = None,
    ) -> IngestReport:
        """Validate and store rows of ``kind`` from ``source``; returns the report.

        ``source`` is a file path (.parquet, .csv, .tsv, .jsonl, .ndjson, .json),
        a DataFrame, an Arrow table, a dict of columns or an iterable of dicts.
        Invalid rows go to ``quarantine`` with a reason and the rest lands;
        duplicates (same key) are counted and not stored twice. ``label`` names the
        source in ``ingest_batches`` and ``quarantine`` (default: the file path or type).
        Kinds that a domain watches are handed to it right after they land (firmware
        reports are checked for unauthorized changes at ingest time).
        """
        from tsfleet.ingest import DEFAULT_CHUNK_ROWS, IngestReport, chunks, describe, ingest_chunk
        from tsfleet.models import KINDS

        if kind not in KINDS:
            text = f"unknown ingest kind {kind!r}"
            # the nearest kind, else as many as fit the error's one line
            hint = suggest(kind, list(KINDS), LINE_WIDTH - len(text) - 2, "expected one of ")
            raise UnknownKind(f"{text}; {hint}")
        self.require_writable()
        label = label or describe(source)
        report = IngestReport(kind, label)
        policy = unknown_devices or self.unknown_devices
        for chunk in chunks(source, chunk_rows or DEFAULT_CHUNK_ROWS):
            report.add(
                ingest_chunk(
                    self.con,
                    kind,
                    KINDS[kind],
                    chunk.table,
                    label,
                    json_lines=chunk.json_lines,
                    pre_quarantined=chunk.pre_quarantined,
                    unknown_devices=policy,
                    hold_once=isinstance(source, (str, os.PathLike)),
                )
            )
        hook = INGEST_HOOKS.get(kind)
        if hook and report.n_accepted:
            getattr(self, hook).on_ingest(report)
        return report

    def require_writable(self) -> None:
        """Raise :class:`ReadOnlyStore` unless this store may be written."""
        if self.read_only:
            raise ReadOnlyStore(
                f"{self.path} is open read-only; open it without read_only to write"
            )

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction on the store, for a domain writing its results: committed
        when the block ends, rolled back when it raises; refused on a read-only store.

        >>> fleet = Fleet(memory=True)
        >>> with fleet.writing() as con:
        ...     _ = con.execute("create table notes (text varchar)")
        """
        self.require_writable()
        with store.transaction(self.con) as con:
            yield con

    # -- data out ------------------------------------------------------------------
    def query(self, sql: str, params: list | dict | None = None) -> Rows:
        """Run SQL (values as ``?`` parameters) and return the rows as dicts: a list that
        also knows its column names (``.columns``), when it holds no row too."""
        cur = self.con.execute(sql, params or [])
        if cur.description is None:
            return Rows()
        names = [d[0] for d in cur.description]
        return Rows((dict(zip(names, row, strict=True)) for row in cur.fetchall()), names)

    def check_known(self, column: str, value: str | None, tables: tuple[str, ...],
                    what: str | None = None) -> None:
        """A name the store has in ``column`` of one of ``tables`` (or None). An unknown one
        raises InvalidParameter with the nearest name (:func:`tsfleet.errors.unknown_name`),
        so that a typo in a filter is not read as an empty answer."""
        if value is None:
            return
        known = [r["name"] for r in self.query(" union ".join(
            f"select distinct {column} as name from {t} where {column} is not null"
            for t in tables) + " order by 1")]
        if value not in known:
            raise unknown_name(what or column.replace("_", " "), value, known)

    def check_site(self, site: str | None, *tables: str) -> None:
        """:meth:`check_known` for a site: of a device, a gateway or a row of ``tables``."""
        self.check_known("site", site, ("devices", "gateways", *tables))

    def frame(self, sql: str, params: list | dict | None = None):
        """Run SQL and return a pandas DataFrame."""
        return self.con.execute(sql, params or []).df()

    def arrow(self, sql: str, params: list | dict | None = None):
        """Run SQL and return a pyarrow Table."""
        return self.con.execute(sql, params or []).to_arrow_table()

    def snapshot(self, out: str | os.PathLike, *, storage_version: str | None = None,
                 views: str = "keep"):
        """Write a consistent, atomically replaced copy of the store to ``out``.

        ``storage_version="v1.0.0"`` makes it readable by DuckDB 1.x; ``views="materialize"``
        computes every view into a table. See
        :func:`tsfleet.share.take_snapshot`; returns its ``SnapshotReport``.
        """
        from tsfleet.share import take_snapshot
        return take_snapshot(self.con, out, storage_version=storage_version, views=views,
                             source=self.path, pin=getattr(self, "_pin", None))

    def export(self, directory: str | os.PathLike, *, since: Any = None, until: Any = None,
               buckets: int | None = None):
        """Export readings (hive-partitioned by date and device bucket) and tables to Parquet.

        Idempotent per range; see :func:`tsfleet.share.export_parquet`.
        """
        from tsfleet.share import export_parquet
        from tsfleet.share.partition import DEFAULT_BUCKETS
        return export_parquet(self.con, directory, since=since, until=until,
                              buckets=DEFAULT_BUCKETS if buckets is None else buckets)

    def info(self) -> dict[str, Any]:
        """Row counts of the core tables, schema version and the readings time range."""
        from tsfleet.models import KINDS

        counts = {}
        for model in KINDS.values():
            table = model.spec.table
            counts[table] = self.con.execute(
                f"select count(*) from {store.quote_ident(table)}"
            ).fetchall()[0][0]
        counts["quarantine"] = self.con.execute("select count(*) from quarantine").fetchall()[0][0]
        version = self.con.execute("select max(version) from schema_version").fetchall()[0][0]
        lo, hi = self.con.execute(
            "select min(observed_at), max(observed_at) from readings"
        ).fetchall()[0]
        return {
            "path": self.path or ":memory:",
            "schema_version": version,
            "rows": counts,
            "readings_from": lo,
            "readings_to": hi,
        }

    # -- the service -----------------------------------------------------------------
    def analyze(self, only: str | list[str] | None = None, *,
                force: bool = False, engine: str = "local", lake: str | os.PathLike | None = None,
                scheduler: str | None = None, buckets: int | None = None,
                workers: int | None = None, processes: bool = True) -> list[RunResult]:
        """Run the analyses that have new data (``only``: "power,calibration" or a list).

        Returns one ``RunResult`` per analysis; each run is recorded in
        ``analysis_runs`` and summarized by the ``freshness`` view.

        ``engine="dask"`` runs the per-device analyses (firmware, power, calibration,
        environment; ``only`` narrows them) as tasks over
        the device buckets of ``lake`` (a ``tsfleet export`` of this store) on the Dask
        scheduler ``scheduler`` (``tcp://host:8786``) or, without it, on a LocalCluster of
        ``workers`` here; their results are attached to this store as the usual tables
        (see :func:`tsfleet.scaleout.run_dask` and docs/scaling.md). Every such run is in
        full (``force`` is implied).
        """
        self.require_writable()
        if engine == "dask":
            if lake is None:
                raise InvalidParameter("engine='dask' needs lake: the directory of a "
                                       "tsfleet export of this store")
            from tsfleet.scaleout import run_dask

            return run_dask(self, lake, only=only, scheduler=scheduler, buckets=buckets,
                            workers=workers, processes=processes).results
        if engine != "local":
            raise InvalidParameter(f"engine must be local or dask, got {engine!r}")
        from tsfleet.service.runner import run_analyses

        return run_analyses(self, only, force=force)

    def retain(self, raw_days: int = 90, hourly_days: int = 400,
               quarantine_days: int | None = None):
        """Roll raw readings older than ``raw_days`` up into hourly and daily tables, then
        delete them; see ``readings_history`` for hour-level data over the whole history.
        With ``quarantine_days``, also delete the quarantined rows and unmapped fields
        received more than that many days ago (without it, retention keeps them)."""
        from tsfleet.service.retention import apply_retention

        self.require_writable()
        return apply_retention(self, raw_days, hourly_days, quarantine_days)

    def device(self, device_id: str) -> dict[str, Any]:
        """The device card: identity, last seen, latest values, findings of each domain."""
        from tsfleet.service.card import device_card

        return device_card(self, device_id)

    @cached_property
    def metrics(self):
        """Declared metrics: declare one, re-ingest readings quarantined as unknown_metric."""
        from tsfleet.metrics import Metrics

        return Metrics(self)

    # -- domains -------------------------------------------------------------------
    # One property per registered domain (tsfleet.domain.DOMAINS), typed for readers.
    @cached_property
    def power(self) -> Power:
        """Battery analysis: discharge, forecasts, criticality, replacement plan."""
        return self._domain("power")

    @cached_property
    def firmware(self) -> Firmware:
        """Firmware inventory, catalog findings, campaigns and compliance."""
        return self._domain("firmware")

    @cached_property
    def calibration(self) -> Calibration:
        """Sensor drift, outliers, calibration registry and schedule."""
        return self._domain("calibration")

    @cached_property
    def environment(self) -> Environment:
        """Environmental exposure, failure correlation, envelopes and stress."""
        return self._domain("environment")

    @cached_property
    def network(self) -> Network:
        """Gateway distribution, load, redundancy and rebalancing."""
        return self._domain("network")

    @cached_property
    def alerts(self) -> Alerts:
        """Alert rules, lifecycle, work orders and notifications."""
        return self._domain("alerts")

    def _domain(self, name: str) -> Any:
        from tsfleet.domain import BY_NAME

        return BY_NAME[name].build(self)
