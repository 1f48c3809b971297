"""A bucket's store, opened from the partitioned lake, and result partitions written back.

A task of a distributed run (:mod:`tsfleet.scaleout`) sees the lake written by
``tsfleet export`` (:mod:`tsfleet.share.export`) and nothing else. It builds an
in-process store: an empty, migrated tsfleet store (copied from a template made once
per process), the dimension tables whole (devices, curves, thresholds, calibration
records: small, and every bucket needs its zone's monitors), and the readings of its
bucket's devices only. The domain's own code then runs on it unchanged.

Results land as ``DIR/results/<table>/bucket=<b>/data.parquet``, written beside the
target and renamed into place, so a reader never sees half a file and a re-run
replaces a partition instead of adding to it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from tsfleet.errors import InvalidParameter
from tsfleet.share.atomic import remove_quietly, replace_file, staging_path
from tsfleet.share.export import MANIFEST
from tsfleet.share.partition import BUCKET_SQL, check_buckets
from tsfleet.store import quote_ident as q
from tsfleet.store import transaction

#: Tables every bucket's store holds whole: the registry and the small tables the
#: analyses join (a bucket's devices read their zone's monitors, curves, thresholds).
WHOLE_TABLES = (
    "devices", "gateways", "device_latest", "device_events", "battery_chemistries",
    "battery_curves", "battery_curve_points", "battery_thresholds", "calibrations",
    "calibration_tolerances", "calibration_metric_scales", "metric_aliases", "metric_catalog",
    "metric_declarations", "ingest_batches", "quarantine",
)
#: The table a lake's copy of a view is loaded into (the view's raw text whole, in the row).
LOADED_INTO = {"quarantine": "quarantine_rows"}
#: Tables of readings, read for the bucket's devices only.
DEVICE_TABLES = ("readings_hourly_rollup", "readings_daily_rollup")
READING_COLUMNS = "device_id, observed_at, metric, value, batch_id"

_template_lock = threading.Lock()
_templates: dict[int, bytes] = {}
#: A task's scratch store goes to memory-backed /dev/shm when that has this much free
#: (a container's default /dev/shm of 64 MB does not), else to the temporary folder;
#: TSFLEET_SCRATCH names another folder.
SHM_MIN_FREE_BYTES = 2 * 1024 ** 3


def lake_buckets(lake: str | Path) -> int:
    """The device-bucket count the lake's readings are partitioned by (its manifest)."""
    path = Path(lake) / MANIFEST
    if not path.is_file():
        raise InvalidParameter(f"{lake} holds no {MANIFEST}: export the store there first "
                               f"(tsfleet export {lake})")
    return int(json.loads(path.read_text(encoding="utf-8"))["buckets"])


def _scratch() -> str | None:
    """The folder of the tasks' scratch stores (None: the temporary folder). On /dev/shm
    their commits' fsyncs cost nothing: 2-worker runs were 8.6% shorter (docs/scaling.md,
    session 21)."""
    if os.environ.get("TSFLEET_SCRATCH"):
        return os.environ["TSFLEET_SCRATCH"]
    try:
        free = os.statvfs("/dev/shm")
    except OSError:
        return None
    if os.access("/dev/shm", os.W_OK) and free.f_bavail * free.f_frsize >= SHM_MIN_FREE_BYTES:
        return "/dev/shm"
    return None


def _template() -> bytes:
    """An empty store with every migration applied, made once per process and kept as
    bytes (its file is removed at once: a worker process leaves nothing behind): writing
    it out is much faster than migrating a new store for every task."""
    with _template_lock:
        data = _templates.get(os.getpid())
        if data is None:
            from tsfleet.fleet import Fleet
            folder = Path(tempfile.mkdtemp(prefix="tsfleet-template-", dir=_scratch()))
            try:
                path = folder / "template.duckdb"
                Fleet(str(path)).close()
                data = path.read_bytes()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            _templates[os.getpid()] = data
        return data


class BucketStore:
    """A temporary tsfleet store for one task; ``with BucketStore() as fleet: ...``.

    ``threads``: DuckDB threads of the task (a worker runs one task per core).
    """

    def __init__(self, threads: int | None = 1):
        self.folder = Path(tempfile.mkdtemp(prefix="tsfleet-bucket-", dir=_scratch()))
        self.threads = threads

    def __enter__(self):
        from tsfleet.fleet import Fleet
        path = self.folder / "bucket.duckdb"
        path.write_bytes(_template())
        self.fleet = Fleet(str(path))
        if self.threads:
            self.fleet.con.execute(f"set threads = {int(self.threads)}")
        self.fleet.con.execute("set wal_autocheckpoint = '1GB'")
        return self.fleet

    def __exit__(self, *exc: object) -> None:
        # the file is deleted next: no checkpoint on close
        self.fleet.con.execute("pragma disable_checkpoint_on_shutdown")
        self.fleet.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def table_file(lake: Path, table: str) -> Path:
    return lake / table / "data.parquet"


def load_whole(con, lake: Path, tables=WHOLE_TABLES) -> None:
    """Replace each table of ``tables`` with the lake's copy (tables the lake lacks stay
    as migrated), in one transaction: a commit per table cost a task more than the
    loading itself at small buckets."""
    with transaction(con):
        for table in tables:
            f = table_file(lake, table)
            if f.is_file():
                target = q(LOADED_INTO.get(table, table))
                con.execute(f"delete from {target}")
                con.execute(f"insert into {target} by name select * from read_parquet(?)",
                            [str(f)])


def device_filter(bucket: int, buckets: int, by: str) -> tuple[str, list]:
    """SQL (over a ``device_id`` column) and parameters selecting the task's devices:
    ``by="device"``: the device-hash bucket; ``by="zone"``: devices whose zone hashes to
    the bucket (so that a zone's peer group is whole in one task; no zone: one bucket)."""
    if by == "device":
        return f"{BUCKET_SQL} = ?", [buckets, bucket]
    zone = BUCKET_SQL.replace("device_id", "coalesce(zone, '')")
    return (f"device_id in (select device_id from devices where {zone} = ?)",
            [buckets, bucket])


def load_readings(con, lake: Path, bucket: int, buckets: int, by: str) -> int:
    """Insert the readings (and raw rollups) of the task's devices; returns the readings.

    When the task's buckets are the lake's device buckets, only the ``bucket=<b>``
    folders are read; otherwise every file, filtered by the device hash.
    """
    where, params = device_filter(bucket, buckets, by)
    folder = lake / "readings"
    if by == "device" and buckets == lake_buckets(lake):
        pattern, where, params = f"date=*/bucket={bucket}", "true", []
    else:
        pattern = "date=*/bucket=*"
    if any(folder.glob(pattern)):
        con.execute(f"insert into readings ({READING_COLUMNS}) select {READING_COLUMNS} "
                    f"from read_parquet(?, hive_partitioning = false) where {where}",
                    [str(folder / pattern / "*.parquet"), *params])
    for table in DEVICE_TABLES:
        f = table_file(lake, table)
        if f.is_file():
            w, p = device_filter(bucket, buckets, by)
            con.execute(f"insert into {q(table)} by name select * from read_parquet(?) "
                        f"where {w}", [str(f), *p])
    return con.execute("select count(*) from readings").fetchall()[0][0]


def result_path(lake: Path, table: str, bucket: int) -> Path:
    return lake / "results" / table / f"bucket={bucket}" / "data.parquet"


def write_partition(con, lake: Path, table: str, bucket: int, sql: str | None = None,
                    params: list | None = None) -> str:
    """Write ``sql`` (default: the whole table) as the bucket's partition of ``table``,
    atomically; returns its path."""
    target = result_path(lake, table, bucket)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_path(target)
    try:
        con.execute(f"copy ({sql or f'select * from {q(table)}'}) to ? "
                    "(format parquet, compression zstd)", [*(params or []), str(staged)])
        replace_file(staged, target)
    finally:
        remove_quietly(staged)
    return str(target)


def partitions(lake: Path, table: str, buckets: list[int] | range) -> list[str]:
    """The result partitions of ``table`` for ``buckets`` that exist."""
    return [str(p) for b in buckets if (p := result_path(lake, table, b)).is_file()]


def remove_beyond(lake: Path, table: str, buckets: int) -> list[Path]:
    """Remove the partitions of ``table`` numbered ``buckets`` or more (left by an earlier
    run with more buckets), so the results folder holds one run's partitions only."""
    removed = []
    for p in (lake / "results" / table).glob("bucket=*"):
        if p.name[7:].isdigit() and int(p.name[7:]) >= buckets:
            remove_quietly(p)
            removed.append(p)
    return removed


def check_task(lake: str | Path, bucket: int, buckets: int) -> Path:
    root = Path(lake).resolve()
    check_buckets(buckets)
    if isinstance(bucket, bool) or not isinstance(bucket, int) or not 0 <= bucket < buckets:
        raise InvalidParameter(f"bucket must be within 0..{buckets - 1}, got {bucket!r}")
    lake_buckets(root)
    return root
