"""The sensors' hourly readings as one numpy grid (sensors x UTC hours).

One SQL pass reads ``calibration_primary_readings`` (raw primary readings,
and the hourly rollup where retention deleted them: the union of
``readings_history``); the readings are bucketed by hour here with
``np.bincount``, which is the same hourly mean as ``readings_history`` and
``calibration_hourly`` without a string-keyed hash aggregate over every
sensor-hour. Rows are sensors (sorted by device id), columns are hours from
the first hour with a reading, NaN where a sensor has no reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR_US = 3_600_000_000


@dataclass
class SensorGrid:
    """Hourly values of ``len(sensors)`` sensors and what is known about each."""

    sensors: pd.DataFrame      # calibration_sensors rows, sorted by device_id
    t0: np.datetime64          # the hour of column 0
    value: np.ndarray          # (n_sensors, n_hours) float64, NaN where no reading
    group: np.ndarray          # peer group (zone and metric) index per sensor
    is_reference: np.ndarray   # bool per sensor
    start_col: np.ndarray      # first column of the current calibration period
    min_scale: np.ndarray      # the metric's min_scale per sensor (0 if none)

    @property
    def device_ids(self) -> np.ndarray:
        return self.sensors["device_id"].to_numpy(object)

    @property
    def n_hours(self) -> int:
        return self.value.shape[1]

    def hour_at(self, idx: np.ndarray) -> np.ndarray:
        """Column indices -> datetime64 (NaT where idx < 0)."""
        idx = np.asarray(idx)
        at = self.t0 + np.maximum(idx, 0).astype("timedelta64[h]")
        return np.where(idx < 0, np.datetime64("NaT"), at)

    def col_of(self, at: np.ndarray) -> np.ndarray:
        """datetime64 -> column index of the hour (floor)."""
        at = np.asarray(at, "datetime64[us]")
        return ((at - self.t0.astype("datetime64[us]")).astype(np.int64) // HOUR_US)


def load_grid(con, sensors: pd.DataFrame, subset: bool = False) -> SensorGrid:
    """Read the primary readings of ``sensors`` (rows of calibration_sensors);
    ``subset``: they are not the whole fleet (filter in SQL)."""
    sensors = sensors.sort_values("device_id").reset_index(drop=True)
    if sensors.empty:
        return SensorGrid(sensors, np.datetime64("1970-01-01T00", "h"), np.zeros((0, 1)),
                          np.zeros(0, int), np.zeros(0, bool), np.zeros(0, np.int64),
                          np.zeros(0))
    # (device, metric) pairs as 64-bit hashes: integer keys all the way to numpy
    keys = con.sql("select hash(d, m) as k from (select unnest(?) as d, unnest(?) as m)",
                   params=[sensors["device_id"].tolist(), sensors["metric"].tolist()]
                   ).fetchnumpy()["k"]
    sql = ("select hash(device_id, metric) as k, epoch_us(observed_at) // ? as hour, value, "
           "n_readings, is_rollup from calibration_primary_readings")
    if subset:
        t = con.sql(sql + " where device_id in (select unnest(?))",
                    params=[HOUR_US, sensors["device_id"].tolist()]).fetchnumpy()
    else:
        t = con.sql(sql, params=[HOUR_US]).fetchnumpy()
    row = pd.Index(keys).get_indexer(t.pop("k"))
    keep = row >= 0
    hour = np.asarray(t.pop("hour"), np.int64)
    value = np.asarray(t.pop("value"), float)
    n = np.asarray(t.pop("n_readings"), float)
    rolled = np.asarray(t.pop("is_rollup"), bool)
    row, hour, value, n, rolled = row[keep], hour[keep], value[keep], n[keep], rolled[keep]
    n_s = len(sensors)
    if len(hour) == 0:
        t0 = np.datetime64("1970-01-01T00", "h")
        v = np.full((n_s, 1), np.nan)
    else:
        h0 = int(hour.min())
        n_h = int(hour.max()) - h0 + 1
        cell = row * n_h + (hour - h0)
        size = n_s * n_h
        raw = ~rolled
        s_raw = np.bincount(cell[raw], weights=value[raw], minlength=size)
        c_raw = np.bincount(cell[raw], minlength=size).astype(float)
        # readings_history: raw readings where kept, the rollup where they aged out
        s = np.bincount(cell[rolled], weights=value[rolled] * n[rolled], minlength=size)
        c = np.bincount(cell[rolled], weights=n[rolled], minlength=size)
        has_raw = c_raw > 0
        s = np.where(has_raw, s_raw, s)
        c = np.where(has_raw, c_raw, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (s / c).reshape(n_s, n_h)
        t0 = np.datetime64(h0, "h")
    groups = sensors.groupby(["zone", "metric"], dropna=False, sort=True).ngroup().to_numpy()
    last_cal = sensors["last_calibrated_at"].to_numpy("datetime64[us]")
    grid = SensorGrid(sensors, t0, v, groups, sensors["is_reference"].fillna(False)
                      .to_numpy(bool), np.zeros(n_s, np.int64),
                      sensors["min_scale"].fillna(0).to_numpy(float))
    cal_col = grid.col_of(last_cal)
    grid.start_col = np.where(np.isnat(last_cal), 0, np.maximum(cal_col + 1, 0))
    return grid
