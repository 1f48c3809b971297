"""A hive-partitioned Parquet export of the store, idempotent per range.

Layout under ``DIR``::

    _tsfleet_export.json                          bucket definition, exported ranges
    readings/date=2026-03-01/bucket=7/part_0.parquet
    <table>/data.parquet                          every other table, whole
    catalog/data.parquet, catalog_columns/data.parquet

Readings are partitioned by UTC day (``date``) and by the stable device-hash
bucket (``bucket``, see :mod:`tsfleet.share.partition`). An export covers whole
days: ``since`` is rounded down and ``until`` up to midnight UTC, and every day
partition in that range is replaced as a whole (a day with no readings any more
is removed). Re-running an export for the same range therefore replaces its
partitions and never duplicates a row. Everything is read in one transaction,
so the files agree with each other while ingest goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from tsfleet.errors import InvalidParameter, StoreError
from tsfleet.results import now_utc
from tsfleet.share.atomic import remove_quietly, replace_dir, replace_file
from tsfleet.share.partition import (
    BUCKET_SQL,
    DEFAULT_BUCKETS,
    check_buckets,
    device_bucket,
    parse_time,
    whole_days,
)
from tsfleet.store import quote_ident as q
from tsfleet.words import plural

MANIFEST = "_tsfleet_export.json"
FORMAT = "tsfleet-export/1"
#: Views exported beside the tables: catalog and catalog_columns describe the export
#: itself; unmapped and quarantine keep the place and columns they had in the lake as
#: tables (before migrations 950 and 991), in place of the tables they now read.
EXPORTED_VIEWS = ("catalog", "catalog_columns", "quarantine", "unmapped")
#: Tables not exported as they are: readings (partitioned by day and device bucket) and
#: those exported through a view of EXPORTED_VIEWS.
NOT_EXPORTED = ("readings", "quarantine_rows", "text_pieces", "unmapped_item_rows",
                "unmapped_payload_rows")

__all__ = ["DEFAULT_BUCKETS", "ExportReport", "device_bucket", "export_parquet"]


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_parquet` wrote."""

    directory: str
    first_day: date | None
    end_day: date | None
    buckets: int
    n_readings: int
    n_days: int
    n_partitions: int
    tables: tuple[str, ...]
    seconds: float

    @property
    def readings_per_s(self) -> float:
        return self.n_readings / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        span = (f"{self.first_day} .. {self.end_day - timedelta(days=1)}" if self.first_day
                else "no readings")
        return (f"export {self.directory}: {self.n_readings:,} readings ({span}, "
                f"{plural(self.n_days, 'day')}, "
                f"{self.n_partitions} partitions, {self.buckets} buckets), "
                f"{len(self.tables)} tables, {self.seconds:.1f} s "
                f"({self.readings_per_s / 1e6:.2f} M readings/s)")


def export_parquet(con: duckdb.DuckDBPyConnection, directory: str | Path, *,
                   since: str | date | datetime | None = None,
                   until: str | date | datetime | None = None,
                   buckets: int = DEFAULT_BUCKETS, compression: str = "zstd") -> ExportReport:
    """Export readings of ``[since, until)`` (whole UTC days) and every other table to Parquet.

    Without ``since``/``until`` the whole readings range is exported.

    >>> import tempfile
    >>> from tsfleet import Fleet
    >>> fleet = Fleet(memory=True)
    >>> _ = fleet.ingest("readings", [{"device_id": "pump-17", "metric": "battery_pct",
    ...                                "observed_at": "2026-03-01T10:00Z", "value": 87}])
    >>> report = export_parquet(fleet.con, tempfile.mkdtemp(), since="2026-03-01",
    ...                         until="2026-03-02")
    >>> report.n_readings, report.n_partitions
    (1, 1)
    """
    check_buckets(buckets)
    if compression not in ("zstd", "snappy", "gzip", "uncompressed"):
        raise InvalidParameter(f"compression must be zstd, snappy, gzip or uncompressed, "
                               f"got {compression!r}")
    root = Path(directory).resolve()
    if root.exists() and not root.is_dir():
        raise InvalidParameter(f"the export folder {directory} is a file")
    manifest = _read_manifest(root, buckets)
    since_at, until_at = parse_time(since, "since"), parse_time(until, "until")
    if since_at is not None and until_at is not None:
        whole_days(since_at, until_at)  # refuse an empty range before touching the disk
    t0 = time.perf_counter()
    remove_stale_staging(root)
    staging = root / f".staging-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    cur = con.cursor()
    try:
        try:
            staging.mkdir(parents=True)
        except OSError as exc:      # a file on the way, a folder that may not be written
            raise StoreError(f"cannot create the export folder {directory}: "
                             f"{(exc.strerror or str(exc)).lower()}") from None
        cur.execute("begin transaction")
        days = _days(cur, since_at, until_at)
        n_readings = 0
        data_days: list[date] = []
        if days:
            data_days = _data_days(cur, days)
            n_readings = _copy_readings(cur, staging / "readings", data_days, buckets,
                                        compression)
        tables = _copy_tables(cur, staging, compression)
        cur.execute("commit")
        n_partitions = _swap_in(root, staging, days, data_days, tables)
        report = ExportReport(
            directory=str(root), first_day=days[0] if days else None,
            end_day=days[1] if days else None, buckets=buckets, n_readings=n_readings,
            n_days=(days[1] - days[0]).days if days else 0, n_partitions=n_partitions,
            tables=tuple(tables), seconds=time.perf_counter() - t0)
        _write_manifest(root, manifest, report)
        return report
    except duckdb.Error as exc:
        with contextlib.suppress(duckdb.Error):
            cur.execute("rollback")
        raise StoreError(f"export to {root} failed: {str(exc).splitlines()[0]}") from exc
    finally:
        cur.close()
        remove_quietly(staging)


def _days(cur: duckdb.DuckDBPyConnection, since: datetime | None,
          until: datetime | None) -> tuple[date, date] | None:
    """The whole UTC days to export; an open bound takes the stored readings' range."""
    if since is None or until is None:
        lo, hi = cur.execute(
            "select min(observed_at), max(observed_at) from readings").fetchall()[0]
        if lo is None:
            return None
        since = lo if since is None else since
        until = hi + timedelta(microseconds=1) if until is None else until
    return whole_days(since, until)


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove the ``.staging-*`` folders of exports that were killed (their process,
    named in the folder, is gone); returns what was removed. A running export's
    staging is left alone."""
    removed = []
    if not root.is_dir():
        return removed
    for p in root.glob(".staging-*"):
        pid = p.name.split("-")[1]  # .staging-<pid>-<random>; older: .staging-<random>
        if pid.isdigit() and int(pid) < 1 << 31 and (int(pid) == os.getpid()
                                                      or _alive(int(pid))):
            continue  # a running export (or one of this process, in another thread)
        remove_quietly(p)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _data_days(cur: duckdb.DuckDBPyConnection, days: tuple[date, date]) -> list[date]:
    """The days of ``[first, end)`` that hold readings: an export visits only these,
    so two readings decades apart (a wrong clock) cost two days, not 10,000."""
    lo = datetime(days[0].year, days[0].month, days[0].day)
    hi = datetime(days[1].year, days[1].month, days[1].day)
    return [r[0] for r in cur.execute(
        "select distinct cast(observed_at as date) as d from readings "
        "where observed_at >= ? and observed_at < ? order by d", [lo, hi]).fetchall()]


def _copy_readings(cur: duckdb.DuckDBPyConnection, folder: Path, days: list[date],
                   buckets: int, compression: str) -> int:
    """One COPY per day into ``folder/date=D/bucket=B/``; returns the readings written.

    A COPY per day keeps the open partitions to ``buckets`` files (one COPY over
    all days opens days x buckets and flushes small row groups); the ``observed_at``
    filter is served by DuckDB's zone maps, since readings arrive roughly in time order.
    The bucket is hashed once per device (from device_latest, which ingest keeps for
    every device with readings) and joined, not hashed per reading; a device missing
    there (rows written around ingest) is hashed in place.
    """
    n_total = 0
    for day in days:
        lo = datetime(day.year, day.month, day.day)
        target = folder / f"date={day.isoformat()}"
        target.mkdir(parents=True)
        n = cur.execute(
            "copy (with b as (select device_id, "
            f"{BUCKET_SQL} as bucket from device_latest group by device_id) "
            "select r.device_id, r.observed_at, r.metric, r.value, r.batch_id, "
            f"coalesce(b.bucket, {BUCKET_SQL.replace('device_id', 'r.device_id')}) as bucket "
            "from readings r left join b on b.device_id = r.device_id "
            "where r.observed_at >= ? and r.observed_at < ?) "
            f"to ? (format parquet, partition_by (bucket), compression {compression}, "
            "filename_pattern 'part_{i}')",
            [buckets, buckets, lo, lo + timedelta(days=1), str(target)]).fetchall()[0][0]
        if n == 0:
            remove_quietly(target)
        n_total += n
    return n_total


def _copy_tables(cur: duckdb.DuckDBPyConnection, staging: Path, compression: str) -> list[str]:
    names = [r[0] for r in cur.execute(
        "select name from catalog where schema_name = 'main' and "
        "(kind = 'table' and not list_contains(?, name) or list_contains(?, name)) "
        "order by name", [list(NOT_EXPORTED), list(EXPORTED_VIEWS)]).fetchall()]
    for name in names:
        (staging / name).mkdir()
        cur.execute(f"copy (select * from {q(name)}) to ? "
                    f"(format parquet, compression {compression})",
                    [str(staging / name / "data.parquet")])
    return names


def _swap_in(root: Path, staging: Path, days: tuple[date, date] | None,
             data_days: list[date], tables: list[str]) -> int:
    """Replace each day partition of the range and each table file; returns partitions written.

    The days visited are those with readings now and those already exported in
    the range (which are removed when they have no readings any more)."""
    trash = staging / "replaced"
    n_partitions = 0
    if days:
        for day in sorted(set(data_days) | set(_exported_days(root, days))):
            name = f"date={day.isoformat()}"
            staged = staging / "readings" / name
            if staged.is_dir():
                n_partitions += sum(1 for p in staged.iterdir() if p.is_dir())
            replace_dir(staged if staged.is_dir() else None, root / "readings" / name, trash)
    for name in tables:
        (root / name).mkdir(parents=True, exist_ok=True)
        replace_file(staging / name / "data.parquet", root / name / "data.parquet")
    return n_partitions


def _exported_days(root: Path, days: tuple[date, date]) -> list[date]:
    found = []
    folder = root / "readings"
    if folder.is_dir():
        for p in folder.glob("date=*"):
            try:
                day = date.fromisoformat(p.name[5:])
            except ValueError:
                continue
            if days[0] <= day < days[1]:
                found.append(day)
    return found


def _read_manifest(root: Path, buckets: int) -> dict:
    path = root / MANIFEST
    if path.is_file():
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("buckets") != buckets:
            raise InvalidParameter(
                f"{root} was exported with {manifest.get('buckets')} device buckets; "
                f"got buckets={buckets}. Use the same count, or export to a new directory")
        return manifest
    if root.is_dir() and any(p for p in root.iterdir() if not p.name.startswith(".staging-")):
        raise InvalidParameter(f"{root} is not empty and holds no {MANIFEST}: "
                               "export into an empty or an earlier export directory")
    return {"format": FORMAT, "buckets": buckets,
            "bucket": "int(md5(device_id utf-8).hexdigest()[:8], 16) % buckets",
            "partitioning": {"readings": ["date", "bucket"]}, "exports": []}


def _write_manifest(root: Path, manifest: dict, report: ExportReport) -> None:
    entry = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(report).items()
             if k in ("first_day", "end_day", "n_readings", "n_partitions")}
    entry["exported_at"] = now_utc().isoformat(timespec="seconds")
    manifest["exports"] = (manifest.get("exports", []) + [entry])[-1000:]
    staged = root / f".{MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    staged.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    replace_file(staged, root / MANIFEST)

