"""Helpers shared by the benchmarks (not part of the package)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pyarrow as pa


@contextmanager
def timer(results: dict, name: str):
    t = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t


def readings_table(n: int, n_devices: int = 10_000, start: str = "2026-01-01T00:00:00",
                   seed: int = 0) -> pa.Table:
    """n hourly battery and temperature readings over n_devices devices, in time order."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    dev = np.array([f"dev-{k:05d}" for k in range(n_devices)], dtype=object)
    metric_names = pa.array(["battery_pct", "temperature_c"])
    per_hour = n_devices * 2
    t0 = np.datetime64(start, "s")
    return pa.table({
        "device_id": pa.array(dev).take(pa.array(i % n_devices)),
        "observed_at": pa.array((t0 + (i // per_hour).astype("timedelta64[h]")
                                 + (i % n_devices % 3600).astype("timedelta64[s]")
                                 ).astype("datetime64[us]")),
        "metric": metric_names.take(pa.array((i // n_devices) % 2)),
        "value": pa.array(np.round(rng.uniform(0, 100, n), 1)),
    })
