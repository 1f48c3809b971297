"""Device card latency on a large store: p50/p99 of ``fleet.device(id)``.

    python bench/query.py                              # 10M readings, 10,000 devices
    python bench/query.py --readings 100000000         # the issue's 100M

The store is filled directly in SQL (the readings are synthetic; the point is
the size), device_latest is derived the way ingest maintains it, and the
domain analyses, if installed, are run on a small simulated slice so the card
has every section. Baseline: the same latest values computed by scanning
``readings`` for the device, measured in the same process. Target: p99 <= 50 ms
at 100M readings.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulate


def build(path: Path, n_readings: int, n_devices: int) -> list[str]:
    fleet = Fleet(path)
    sim = simulate(SimConfig(n_devices=min(n_devices, 300), days=20, seed=3))
    sim.write(fleet)                         # real devices, findings, every table
    fleet.analyze(force=True)
    con = fleet.con
    metrics = "['battery_pct', 'temperature_c', 'humidity_pct', 'rssi_dbm', 'vibration_g']"
    con.execute(f"""
        insert into readings
        select 'bench-' || lpad(cast(i % {n_devices} as varchar), 5, '0'),
               timestamp '2025-01-01' + to_seconds(cast(i // {n_devices * 5} * 3600
                                                        + i % 3600 as bigint)),
               {metrics}[1 + (i // {n_devices}) % 5],
               (i % 1000) / 10.0,
               0
        from range({n_readings}) t(i)""")
    con.execute("""
        insert or replace into device_latest
        select device_id, metric, max(observed_at), arg_max(value, observed_at), 0, count(*),
               min(observed_at), now()
        from readings where batch_id = 0 group by all""")
    ids = [r[0] for r in con.execute("select distinct device_id from device_latest").fetchall()]
    fleet.close()
    return ids


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=10_000_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=500)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.duckdb"
        t = time.perf_counter()
        ids = build(path, a.readings, a.devices)
        print(f"built a store of {a.readings:,} readings, {len(ids):,} devices in "
              f"{time.perf_counter() - t:.0f} s")
        rng = random.Random(0)
        with Fleet(path, read_only=True) as fleet:
            card_ms, scan_ms = [], []
            for _ in range(a.queries):
                dev = rng.choice(ids)
                t = time.perf_counter()
                card = fleet.device(dev)
                card_ms.append((time.perf_counter() - t) * 1000)
                assert card["latest"]
            for _ in range(max(10, a.queries // 20)):
                dev = rng.choice(ids)
                t = time.perf_counter()
                fleet.query("select metric, arg_max(value, observed_at) as value, "
                            "max(observed_at) as at from readings where device_id = ? "
                            "group by metric", [dev])
                scan_ms.append((time.perf_counter() - t) * 1000)
        p50, p99 = percentile(card_ms, 50), percentile(card_ms, 99)
        base = statistics.median(scan_ms)
        print(f"device card: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {a.queries} cards "
              f"(target p99 <= 50 ms)")
        print(f"baseline (scan readings for the latest values): median {base:.1f} ms; "
              f"card p50 is x{base / p50:.1f} faster")


if __name__ == "__main__":
    main()
