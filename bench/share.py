"""Benchmark of snapshots and the Parquet export, against plain baselines.

    PYTHONPATH=. python bench/share.py                      # 5M readings, a few minutes
    PYTHONPATH=. python bench/share.py --readings 50000000  # the 50M target

Builds a store by generating readings directly in DuckDB SQL (hourly readings of
``--metrics`` metrics for ``--devices`` devices), then times:

- snapshot (default storage) and snapshot ``--storage-version v1.0.0``, against a
  plain file copy of the checkpointed store (the baseline: fast, but neither
  consistent under writes, nor materialized, nor readable by DuckDB 1.x);
- the export (hive-partitioned by date and device bucket, zstd) and its re-run
  over the same range, against a naive single-file ``COPY readings TO x.parquet``.

Targets: a 50M-reading snapshot in <= 30 s; export >= 2M readings/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from tsfleet import Fleet

METRICS = ["battery_pct", "battery_voltage_v", "temperature_c", "humidity_pct", "vibration_g",
           "rssi_dbm", "snr_db", "pressure_kpa", "co2_ppm", "packet_loss_pct"]


def build_store(path: Path, n_readings: int, n_devices: int, n_metrics: int) -> Fleet:
    """A store with ``n_readings`` hourly readings, plus devices and device_latest."""
    fleet = Fleet(str(path))
    n_hours = max(1, n_readings // (n_devices * n_metrics))
    con = fleet.con
    con.execute("insert into devices (device_id, device_type, manufacturer, model, site, zone) "
                "select 'dev-' || lpad(i::varchar, 6, '0'), 'sensor', 'acme', 'm1', "
                "'site-' || (i % 10), 'zone-' || (i % 50) from range(?) t(i)", [n_devices])
    con.execute("create temp table bench_metrics as select unnest(?::varchar[]) as metric",
                [METRICS[:n_metrics]])
    # hour-major order, like real ingest; each device at its own phase within the hour
    con.execute(
        "insert into readings select d.device_id, "
        "timestamp '2026-01-01' + to_hours(h.i) + to_seconds(d.phase), m.metric, "
        "round(50 + 40 * sin(h.i / 24.0 + d.phase) + random(), 2), 1 "
        "from range(?) h(i) "
        "cross join (select device_id, (hash(device_id) % 3600)::bigint as phase from devices) d "
        "cross join bench_metrics m", [n_hours])
    con.execute("insert into device_latest select device_id, metric, max(observed_at), "
                "arg_max(value, observed_at), 1, count(*), min(observed_at), now() "
                "from readings group by all")
    con.execute("insert into ingest_batches values (1, 'readings', 'bench', now(), now(), "
                "(select count(*) from readings), (select count(*) from readings), 0, 0, "
                "(select min(observed_at) from readings), (select max(observed_at) from readings))")
    con.execute("checkpoint")
    return fleet


CPU: dict[str, float] = {}


def timed(fn, label: str | None = None):
    """Wall time of ``fn()``; its process CPU time (all DuckDB threads) goes to ``CPU[label]``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if label:
        CPU[label] = time.process_time() - c0
    return out, time.perf_counter() - t0


def cpu_note(label: str, n: int) -> str:
    """CPU seconds, and the wall time they would take on the idle cores of this machine."""
    cpu = CPU[label]
    return (f"cpu {cpu:6.1f} s (idle {os.cpu_count()} cores: ~{cpu / os.cpu_count():.1f} s, "
            f"{n / (cpu / os.cpu_count()) / 1e6:.2f} M readings/s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readings", type=int, default=5_000_000)
    p.add_argument("--devices", type=int, default=5_000)
    p.add_argument("--metrics", type=int, default=10, choices=range(1, len(METRICS) + 1))
    p.add_argument("--buckets", type=int, default=16)
    p.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--only", choices=("all", "snapshot", "export"), default="all")
    args = p.parse_args()

    work = Path(args.dir or tempfile.mkdtemp(prefix="tsfleet-bench-share-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "live.duckdb"
    for f in (store, Path(str(store) + ".wal")):
        f.unlink(missing_ok=True)
    try:
        fleet, t_build = timed(lambda: build_store(store, args.readings, args.devices,
                                                   args.metrics))
        n = fleet.query("select count(*) as n from readings")[0]["n"]
        print(f"store: {n:,} readings, {args.devices:,} devices, "
              f"{store.stat().st_size / 1e6:.0f} MB, built in {t_build:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")

        if args.only in ("all", "snapshot"):
            bench_snapshot(fleet, store, work, n)
        if args.only in ("all", "export"):
            bench_export(fleet, work, n, args.buckets)
        fleet.close()
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


def bench_snapshot(fleet: Fleet, store: Path, work: Path, n: int) -> None:
    _, t_copy = timed(lambda: shutil.copyfile(store, work / "copy.duckdb"))
    snap, t_snap = timed(lambda: fleet.snapshot(work / "snap.duckdb"), "snap")
    snap1, t_snap1 = timed(lambda: fleet.snapshot(work / "snap1.duckdb",
                                                  storage_version="v1.0.0"), "snap1")
    scaled = 50e6 / n
    print(f"baseline file copy:          {t_copy:6.1f} s")
    for label, key, report, t in (("snapshot (latest storage):", "snap", snap, t_snap),
                                  ("snapshot (v1.0.0 storage):", "snap1", snap1, t_snap1)):
        idle = CPU[key] / os.cpu_count()
        print(f"{label:28s} {t:6.1f} s  {n / t / 1e6:5.2f} M readings/s  "
              f"{report.size_bytes / 1e6:.0f} MB  ratio vs copy {t / t_copy:5.1f}x  "
              f"{cpu_note(key, n)}")
        print(f"{'':28s} 50M readings: ~{t * scaled:.0f} s at this load, "
              f"~{idle * scaled:.0f} s on idle cores (target <= 30 s)")


def bench_export(fleet: Fleet, work: Path, n: int, buckets: int) -> None:
    naive = work / "naive.parquet"
    _, t_naive = timed(lambda: fleet.con.execute(
        "copy readings to ? (format parquet, compression zstd)", [str(naive)]), "naive")
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    export, t_export = timed(lambda: fleet.export(lake, buckets=buckets), "export")
    again, t_again = timed(lambda: fleet.export(lake, buckets=buckets), "again")
    rate, rate_naive = n / t_export, n / t_naive
    idle_rate = n / (CPU["export"] / os.cpu_count())
    print(f"baseline naive COPY (1 file): {t_naive:6.1f} s  {rate_naive / 1e6:5.2f} M "
          f"readings/s  {cpu_note('naive', n)}")
    print(f"export ({export.n_partitions} partitions):  {t_export:6.1f} s  "
          f"{rate / 1e6:5.2f} M readings/s  ratio vs naive {rate / rate_naive:4.2f}  "
          f"{cpu_note('export', n)}")
    print(f"{'':28s} target >= 2 M readings/s: {'met' if rate >= 2e6 else 'NOT met'} at "
          f"this load, {'met' if idle_rate >= 2e6 else 'NOT met'} on idle cores")
    print(f"export again, same range:    {t_again:6.1f} s  {n / t_again / 1e6:5.2f} M "
          f"readings/s  (replaced {again.n_partitions} partitions, no duplicates)  "
          f"{cpu_note('again', n)}")


if __name__ == "__main__":
    main()
