"""Residual series of many sensors as one hourly grid.

Sensors are rows, hours are columns, missing hours are NaN. Every statistic
in :mod:`tsfleet.calibration.tests` works on this grid, vectorized over all
sensors at once, so a fleet of 10,000 sensors is a few numpy passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class ResidualGrid:
    """Residuals (% of scale) of ``len(device_ids)`` sensors over ``n_hours`` hours."""

    device_ids: np.ndarray     # object array of str
    t0: np.datetime64          # the hour of column 0
    x: np.ndarray              # (n_sensors, n_hours) float64, NaN where missing
    source: np.ndarray         # expected_source of the sensor's latest hour

    @property
    def mask(self) -> np.ndarray:
        return ~np.isnan(self.x)

    @property
    def n_hours(self) -> int:
        return self.x.shape[1]

    def hour_at(self, idx: np.ndarray) -> np.ndarray:
        """Column indices -> datetime64 (NaT where idx < 0)."""
        idx = np.asarray(idx)
        at = self.t0 + np.maximum(idx, 0).astype("timedelta64[h]")
        return np.where(idx < 0, np.datetime64("NaT"), at)


def grid_from_arrow(table: pa.Table) -> ResidualGrid:
    """Rows of (device_id, hour_at, residual_pct, expected_source) -> a grid."""
    if table.num_rows == 0:
        return ResidualGrid(np.array([], dtype=object), np.datetime64("1970-01-01T00", "h"),
                            np.zeros((0, 1)), np.array([], dtype=object))
    enc = pc.dictionary_encode(table.column("device_id")).combine_chunks()
    names = np.array(enc.dictionary.to_pylist(), dtype=object)
    order = np.argsort(names)
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    row = rank[enc.indices.to_numpy()]
    hours = table.column("hour_at").to_numpy().astype("datetime64[h]")
    t0 = hours.min()
    col = (hours - t0).astype(np.int64)
    x = np.full((len(names), int(col.max()) + 1), np.nan)
    x[row, col] = table.column("residual_pct").to_numpy(zero_copy_only=False)
    src = np.asarray(table.column("expected_source").to_numpy(zero_copy_only=False), dtype=object)
    source = np.empty(len(names), dtype=object)
    last = np.lexsort((col, row))  # the latest hour of each sensor wins
    source[row[last]] = src[last]
    return ResidualGrid(names[order], t0, x, source)
