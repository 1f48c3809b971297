"""The tunables of the network views, kept in the ``network_settings`` table."""

from __future__ import annotations

import math

import duckdb

from tsfleet.errors import InvalidParameter

#: Allowed range of each setting (inclusive).
RANGES: dict[str, tuple[float, float]] = {
    "rssi_floor_dbm": (-160, 10),
    "reach_window_days": (0.01, 3650),
    "overload_utilization": (0.01, 10),
    "down_after_hours": (0.01, 8760),
    "churn_window_days": (0.01, 3650),
    "flapping_connects_per_day": (0, 1e6),
    "forecast_window_days": (2, 3650),
    "forecast_horizon_days": (0, 3650),
}


def read_settings(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Every setting by name."""
    return {name: float(value) for name, value in
            con.execute("select name, value from network_settings order by name").fetchall()}


def write_settings(con: duckdb.DuckDBPyConnection, values: dict[str, float]) -> dict[str, float]:
    """Validate and store ``values``; returns all settings after the change."""
    for name, value in values.items():
        if name not in RANGES:
            raise InvalidParameter(f"unknown network setting {name!r}; expected one of "
                                   f"{', '.join(sorted(RANGES))}")
        lo, hi = RANGES[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value) or not lo <= value <= hi:
            raise InvalidParameter(f"{name} must be a number within {lo:g}..{hi:g}, got {value!r}")
    for name, value in values.items():
        con.execute("update network_settings set value = ? where name = ?", [float(value), name])
    return read_settings(con)
