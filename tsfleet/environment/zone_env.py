"""The zone environment per hour: valid monitor hours, bounded interpolation,
gaps and monitor faults, written as result tables.

Works on the dense (zone, metric, hour) arrays of :mod:`monitor_hours`: a zone's
value of an hour is the mean of its monitors' valid hours; a missing hour is
interpolated linearly between the previous and the next observed hour of that
metric when the gap between them is at most ``max_gap_hours``, and stays a gap
otherwise. The previous/next observed hour of every cell is one running maximum
(``np.maximum.accumulate``) forwards and one backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from tsfleet.environment import monitor_hours
from tsfleet.environment.monitor_hours import MonitorHours
from tsfleet.results import write_result
from tsfleet.store import quote_ident

EPOCH = pd.Timestamp(0)


def hour_at(hours) -> np.ndarray:
    """UTC timestamps (datetime64[us]) of hours since the epoch."""
    return (np.asarray(hours, dtype=np.int64) * 3_600_000_000).astype("datetime64[us]")


@dataclass(frozen=True)
class Window:
    """The analysis window [start, end), whole UTC hours."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def _window(mh: MonitorHours) -> Window:
    start = (EPOCH + pd.Timedelta(hours=mh.hour0)).to_pydatetime()
    return Window(start, (EPOCH + pd.Timedelta(hours=mh.hour0 + mh.hours)).to_pydatetime())


def zone_series(mh: MonitorHours, zones: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the valid monitor hours per zone, metric and hour (NaN: none), and the
    number of monitors that contributed; ``zones`` gives axis 0."""
    valid = mh.valid
    code = pd.Index(zones).get_indexer(mh.zone)
    total = np.zeros((len(zones), len(mh.metrics), mh.hours))
    count = np.zeros((len(zones), len(mh.metrics), mh.hours))
    np.add.at(total, code, np.where(valid, mh.mean, 0.0))
    np.add.at(count, code, valid.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), count


def interpolate(obs: np.ndarray, max_gap_hours: int) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Fill runs of NaN along the last axis no longer than ``max_gap_hours`` linearly.

    Returns (filled values, previous observed index or -1, next observed index or
    the length) per cell.
    """
    n = obs.shape[-1]
    seen = ~np.isnan(obs)
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(seen, idx, -1), axis=-1)
    nxt = np.minimum.accumulate(np.where(seen, idx, n)[..., ::-1], axis=-1)[..., ::-1]
    ok = ~seen & (prev >= 0) & (nxt < n) & (nxt - prev - 1 <= max_gap_hours)
    p_val = np.take_along_axis(obs, np.clip(prev, 0, n - 1), axis=-1)
    n_val = np.take_along_axis(obs, np.clip(nxt, 0, n - 1), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        filled = p_val + (n_val - p_val) * (idx - prev) / (nxt - prev)
    return np.where(seen, obs, np.where(ok, filled, np.nan)), prev, nxt


def build(con: duckdb.DuckDBPyConnection, *, max_gap_hours: int, dead_after_hours: int,
          params: dict, declared: tuple[str, ...] = ()) -> tuple[Window | None, pd.DataFrame]:
    """Write environment_zone_hourly, environment_zone_factor_hourly (the ``declared``
    environmental metrics), environment_gaps and environment_monitor_faults; return the
    analysis window (None without any monitor data) and the zone hours with every factor
    as a column."""
    mh = monitor_hours.load(con, declared)
    zone_hours = pd.DataFrame(columns=["zone", "hour_at", "temperature_c", "humidity_pct",
                                       "vibration_g", "daily_swing_c", *declared])
    if mh is None:
        for table in ("environment_zone_hourly", "environment_zone_factor_hourly",
                      "environment_gaps"):
            con.execute(f"delete from {quote_ident(table)}")
        end = con.execute("select max(observed_at) from device_latest").fetchall()[0][0]
        window = None
    else:
        window = _window(mh)
        end = window.end
        zones = np.array(sorted(r[0] for r in con.execute(
            "select distinct zone from devices").fetchall()), dtype=object)
        obs, count = zone_series(mh, zones)
        filled, prev, nxt = interpolate(obs, max_gap_hours)
        zone_hours = _zone_hourly(mh, zones, obs, filled, count)
        write_result(con, "environment_zone_hourly",
                     zone_hours.drop(columns=list(declared)), params=params)
        write_result(con, "environment_zone_factor_hourly",
                     _factor_hourly(mh, zones, obs, filled), params=params)
        write_result(con, "environment_gaps", _gaps(mh, zones, obs, filled, prev, nxt),
                     params=params)
    faults = monitor_hours.faults(mh, con, end or datetime(1970, 1, 1),
                                  dead_after_hours=dead_after_hours)
    write_result(con, "environment_monitor_faults", faults, params=params)
    return window, zone_hours


def _zone_hourly(mh: MonitorHours, zones: np.ndarray, obs: np.ndarray, filled: np.ndarray,
                 count: np.ndarray) -> pd.DataFrame:
    n_z, _, n_h = filled.shape
    temp = filled[:, 0]
    # Daily swing: max - min temperature of the zone's UTC calendar day.
    day = (mh.hour0 + np.arange(n_h)) // 24
    day_code = day - day[0]
    frame = pd.DataFrame({"z": np.repeat(np.arange(n_z), n_h), "d": np.tile(day_code, n_z),
                          "t": temp.ravel()})
    g = frame.groupby(["z", "d"])["t"]
    swing = (g.transform("max") - g.transform("min")).to_numpy()
    builtin = slice(0, len(monitor_hours.METRICS))
    return pd.DataFrame({
        "zone": np.repeat(zones, n_h),
        "hour_at": np.tile(hour_at(mh.hour0 + np.arange(n_h)), n_z),
        "temperature_c": temp.ravel(),
        "humidity_pct": filled[:, 1].ravel(),
        "vibration_g": filled[:, 2].ravel(),
        "daily_swing_c": swing,
        "n_monitors": count[:, builtin].max(axis=1).ravel().astype(np.int32),
        "is_interpolated": (np.isnan(obs) & ~np.isnan(filled))[:, builtin].any(axis=1).ravel(),
        **{m: filled[:, k].ravel() for k, m in enumerate(mh.metrics) if k >= builtin.stop},
    })


def _factor_hourly(mh: MonitorHours, zones: np.ndarray, obs: np.ndarray,
                   filled: np.ndarray) -> pd.DataFrame:
    """The declared environmental metrics in long form (one row per zone, factor, hour)."""
    n_z, _, n_h = filled.shape
    ks = list(range(len(monitor_hours.METRICS), len(mh.metrics)))
    return pd.DataFrame({
        "zone": np.tile(np.repeat(zones, n_h), len(ks)),
        "hour_at": np.tile(hour_at(mh.hour0 + np.arange(n_h)), n_z * len(ks)),
        "factor": np.repeat(np.array([mh.metrics[k] for k in ks], dtype=object), n_z * n_h),
        "value": np.concatenate([filled[:, k].ravel() for k in ks]) if ks else np.zeros(0),
        "is_interpolated": (np.concatenate([(np.isnan(obs[:, k]) & ~np.isnan(filled[:, k]))
                                            .ravel() for k in ks]) if ks else np.zeros(0, bool)),
    })


def _gaps(mh: MonitorHours, zones: np.ndarray, obs: np.ndarray, filled: np.ndarray,
          prev: np.ndarray, nxt: np.ndarray) -> pd.DataFrame:
    """One row per zone, metric and run of hours without valid monitor data."""
    missing = np.isnan(obs)
    first = missing.copy()
    first[..., 1:] &= ~missing[..., :-1]
    z, k, h = np.nonzero(first)
    n_h = obs.shape[-1]
    p, q = prev[z, k, h], nxt[z, k, h]
    return pd.DataFrame({
        "zone": zones[z], "metric": np.array(mh.metrics, dtype=object)[k],
        "gap_from": hour_at(mh.hour0 + np.where(p >= 0, h, 0)),
        "gap_to": hour_at(mh.hour0 + np.where(q < n_h, q, n_h)),
        "hours": (q - h).astype(np.int32),
        "is_filled": ~np.isnan(filled[z, k, h]),
    })
