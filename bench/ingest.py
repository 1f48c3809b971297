"""Ingest throughput: naive row-by-row vs bulk Parquet/Arrow vs validated JSON lines,
and ingest into an empty store vs one that already holds many readings.

    python bench/ingest.py                       # defaults: a few minutes
    python bench/ingest.py --bulk 10000000 --existing 50000000 --memory 10000000
    python bench/ingest.py --hostile [options of bench/ingest_hostile.py]

Prints readings/s for each path and the ratios against the naive path measured
in the same process. Targets (issue 2): bulk >= 1,000,000 readings/s including
dedup; JSON lines >= 100,000 readings/s; into a store holding 50M readings no
more than 2x slower than into an empty one; 10M-row Parquet with peak RSS < 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import readings_table, timer  # noqa: E402

from tsfleet import Fleet  # noqa: E402
from tsfleet.store import CONNECT_CONFIG  # noqa: E402


def naive(n: int) -> float:
    """Row-by-row executemany into a plain table with a primary key: the baseline."""
    rows = readings_table(n).to_pylist()
    con = duckdb.connect(config=CONNECT_CONFIG)
    con.execute(
        "create table r (device_id varchar, observed_at timestamp, metric varchar, "
        "value double, primary key (device_id, observed_at, metric))"
    )
    res: dict = {}
    with timer(res, "t"):
        con.executemany(
            "insert or ignore into r values (?, ?, ?, ?)",
            [(r["device_id"], r["observed_at"], r["metric"], r["value"]) for r in rows],
        )
    return n / res["t"]


def bulk(n: int, tmp: Path) -> float:
    path = tmp / "bulk.parquet"
    pq.write_table(readings_table(n), path, row_group_size=1_000_000)
    with Fleet(memory=True) as f:
        res: dict = {}
        with timer(res, "t"):
            report = f.ingest("readings", path)
        assert report.n_accepted == n, report
    return n / res["t"]


def json_lines(n: int, tmp: Path) -> float:
    path = tmp / "rows.jsonl"
    t = readings_table(n)
    with path.open("w") as fh:
        for r in t.to_pylist():
            r["observed_at"] = r["observed_at"].isoformat() + "Z"
            fh.write(json.dumps(r) + "\n")
    with Fleet(memory=True) as f:
        res: dict = {}
        with timer(res, "t"):
            report = f.ingest("readings", path)
        assert report.n_accepted == n, report
    return n / res["t"]


def into_full_store(existing: int, batch: int, tmp: Path) -> tuple[float, float]:
    """readings/s of the same batch into an empty store and into one holding `existing`."""
    new = readings_table(batch, start="2027-06-01T00:00:00", seed=1)
    rates = []
    for n_old in (0, existing):
        db = tmp / f"store-{n_old}.duckdb"
        with Fleet(db) as f:
            step = 5_000_000
            for lo in range(0, n_old, step):
                f.ingest(
                    "readings",
                    readings_table(min(step, n_old - lo), start=_hours_after(lo)),
                    chunk_rows=step,
                )
            res: dict = {}
            with timer(res, "t"):
                report = f.ingest("readings", new)
            assert report.n_accepted == batch
            rates.append(batch / res["t"])
        db.unlink()
    return rates[0], rates[1]


def _hours_after(n_rows_before: int) -> str:
    import numpy as np

    t = np.datetime64("2026-01-01T00:00:00") + np.timedelta64(n_rows_before // 20_000, "h")
    return str(t)


def peak_memory(n: int, tmp: Path) -> float:
    """Peak RSS (MiB) of a fresh process ingesting an n-row Parquet file."""
    path = tmp / "big.parquet"
    writer = None
    for lo in range(0, n, 2_000_000):
        t = readings_table(min(2_000_000, n - lo), start=_hours_after(lo))
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t, row_group_size=1_000_000)
    writer.close()
    code = (
        "import resource, sys; from tsfleet import Fleet; "
        "f = Fleet(sys.argv[2]); r = f.ingest('readings', sys.argv[1]); "
        "print(r.n_accepted, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp / "mem.duckdb")],
        capture_output=True,
        text=True,
        check=True,
    )
    accepted, rss_kib = out.stdout.split()
    assert int(accepted) == n
    return int(rss_kib) / 1024


def main() -> None:
    if "--hostile" in sys.argv:  # hostile files: see bench/ingest_hostile.py
        from ingest_hostile import main as hostile
        hostile([a for a in sys.argv[1:] if a != "--hostile"])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--naive", type=int, default=20_000, help="rows for the row-by-row baseline")
    p.add_argument("--bulk", type=int, default=4_000_000)
    p.add_argument("--jsonl", type=int, default=1_000_000)
    p.add_argument(
        "--existing",
        type=int,
        default=10_000_000,
        help="readings already in the store for the full-store case (50M by argument)",
    )
    p.add_argument("--batch", type=int, default=1_000_000)
    p.add_argument("--memory", type=int, default=0, help="rows for the peak-memory check (10M)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        r_naive = naive(a.naive)
        print(f"naive executemany : {r_naive:>12,.0f} readings/s  ({a.naive:,} rows)")
        r_bulk = bulk(a.bulk, tmp)
        print(
            f"bulk parquet      : {r_bulk:>12,.0f} readings/s  ({a.bulk:,} rows, validated, "
            f"deduplicated)  x{r_bulk / r_naive:,.0f} naive   target >= 1,000,000"
        )
        r_json = json_lines(a.jsonl, tmp)
        print(
            f"json lines        : {r_json:>12,.0f} readings/s  ({a.jsonl:,} rows)"
            f"  x{r_json / r_naive:,.0f} naive   target >= 100,000"
        )
        empty, full = into_full_store(a.existing, a.batch, tmp)
        print(f"into empty store  : {empty:>12,.0f} readings/s  ({a.batch:,} new rows)")
        print(
            f"into {a.existing / 1e6:,.0f}M store  : {full:>12,.0f} readings/s  "
            f"slowdown x{empty / full:.2f}   target <= 2.0"
        )
        if a.memory:
            mib = peak_memory(a.memory, tmp)
            print(f"peak RSS, {a.memory / 1e6:,.0f}M-row parquet: {mib:,.0f} MiB   target < 2048")
    print(
        f"(this process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}"
        " MiB)"
    )


if __name__ == "__main__":
    main()
