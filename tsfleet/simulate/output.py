"""What generators produce: readings as index arrays, other ingest rows, and truth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tsfleet.results import to_arrow

#: A dict of numpy arrays or lists (object arrays of str allowed) -> Arrow table.
as_table = to_arrow


@dataclass
class SimOutput:
    """Accumulates what the domain generators make.

    Readings are kept as parallel index arrays (device index, hour index,
    value) per metric until delivery, which is where gaps, lateness and
    duplicates are applied to all of them alike.
    """

    readings: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    rows: dict[str, list[pa.Table]] = field(default_factory=dict)
    truth: dict[str, pa.Table] = field(default_factory=dict)

    def add_readings(self, metric: str, device_idx: np.ndarray, hour_idx: np.ndarray,
                     values: np.ndarray) -> None:
        """Hourly values of ``metric`` (canonical name) for the given device-hours."""
        device_idx, hour_idx, values = (np.asarray(a) for a in (device_idx, hour_idx, values))
        if not (len(device_idx) == len(hour_idx) == len(values)):
            raise ValueError("device_idx, hour_idx and values must have equal lengths")
        self.readings.append((metric, device_idx.astype(np.int32), hour_idx.astype(np.int32),
                              values.astype(np.float64)))

    def add_grid(self, metric: str, device_idx: np.ndarray, grid: np.ndarray) -> None:
        """A (len(device_idx), n_hours) grid of values; NaN cells are not reported."""
        rows, hours = np.nonzero(~np.isnan(grid))
        self.add_readings(metric, np.asarray(device_idx)[rows], hours, grid[rows, hours])

    def add_rows(self, kind: str, data: pa.Table | Mapping) -> None:
        """Rows of another ingest kind (devices, device_events, connections, ...)."""
        self.rows.setdefault(kind, []).append(as_table(data))

    def add_truth(self, name: str, data: pa.Table | Mapping) -> None:
        """A ground-truth table, stored as ``sim.<name>``."""
        if name in self.truth:
            raise ValueError(f"truth table sim.{name} written twice")
        self.truth[name] = as_table(data)
