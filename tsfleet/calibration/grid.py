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
    is_reference: np.ndarray   # bool per sensor: a reference that anchors (is_anchor)
    start_col: np.ndarray      # first column of the current calibration period
    min_scale: np.ndarray      # the metric's min_scale per sensor (0 if none)
    trusted_from: np.ndarray = None   # per sensor: anchor after this column (passed check)
    trusted_until: np.ndarray = None  # ... up to this column (-1: never)

    def trusted(self, idx: np.ndarray) -> np.ndarray:
        """Bool ``idx.shape + (n_hours,)``: the sensor is its zone's anchor that hour
        (a reference instrument, or within the validity of a passed calibration check)."""
        cols = np.arange(self.n_hours)
        ref = self.is_reference[idx][..., None]
        if self.trusted_from is None:
            return np.broadcast_to(ref, idx.shape + (self.n_hours,))
        return ref | ((cols > self.trusted_from[idx][..., None])
                      & (cols <= self.trusted_until[idx][..., None]))

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
    # (device, metric) pairs as 64-bit hashes: an integer join, not a string one
    keys = con.sql("select hash(d, m) as k from (select unnest(?) as d, unnest(?) as m)",
                   params=[sensors["device_id"].tolist(), sensors["metric"].tolist()]
                   ).fetchnumpy()["k"]
    con.register("_tsf_cal_keys", pd.DataFrame({"k": keys,
                                                "i": np.arange(n_s := len(sensors),
                                                               dtype=np.int32)}))
    sql = ("select s.i, (epoch_us(p.observed_at) // ?)::bigint as hour, p.value{} "
           "from calibration_primary_readings p "
           "join _tsf_cal_keys s on s.k = hash(p.device_id, p.metric) where {} p.is_rollup")
    where = "p.device_id in (select unnest(?)) and" if subset else ""
    extra = [sensors["device_id"].tolist()] if subset else []
    parts = []
    try:
        for rolled, cols in ((False, ""), (True, ", p.n_readings")):
            t = con.sql(sql.format(cols, where + ("" if rolled else " not")),
                        params=[HOUR_US, *extra]).fetchnumpy()
            parts.append((np.asarray(t["i"], np.int64), np.asarray(t["hour"], np.int64),
                          np.asarray(t["value"], float),
                          np.asarray(t["n_readings"], float) if rolled else None))
            del t
    finally:
        con.unregister("_tsf_cal_keys")
    (row, hour, value, _), (r_row, r_hour, r_value, r_n) = parts
    if len(hour) + len(r_hour) == 0:
        t0 = np.datetime64("1970-01-01T00", "h")
        v = np.full((n_s, 1), np.nan)
    else:
        h0 = int(min(hour.min(initial=2**62), r_hour.min(initial=2**62)))
        n_h = int(max(hour.max(initial=-1), r_hour.max(initial=-1))) - h0 + 1
        size = n_s * n_h
        cell = row * n_h + (hour - h0)
        s = np.bincount(cell, weights=value, minlength=size)
        c = np.bincount(cell, minlength=size).astype(float)
        if len(r_hour):   # readings_history: the rollup only where no raw reading is kept
            r_cell = r_row * n_h + (r_hour - h0)
            r_s = np.bincount(r_cell, weights=r_value * r_n, minlength=size)
            r_c = np.bincount(r_cell, weights=r_n, minlength=size)
            s = np.where(c > 0, s, r_s)
            c = np.where(c > 0, c, r_c)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (s / c).reshape(n_s, n_h)
        t0 = np.datetime64(h0, "h")
    groups = sensors.groupby(["zone", "metric"], dropna=False, sort=True).ngroup().to_numpy()
    last_cal = sensors["last_calibrated_at"].to_numpy("datetime64[us]")
    anchor = sensors["is_anchor"] if "is_anchor" in sensors else sensors["is_reference"]
    grid = SensorGrid(sensors, t0, v, groups, anchor.fillna(False).to_numpy(bool),
                      np.zeros(n_s, np.int64),
                      sensors["min_scale"].fillna(0).to_numpy(float))
    cal_col = grid.col_of(last_cal)
    grid.start_col = np.where(np.isnat(last_cal), 0, np.maximum(cal_col + 1, 0))
    if "trusted_from_at" in sensors:
        t_from = sensors["trusted_from_at"].to_numpy("datetime64[us]")
        t_until = sensors["trusted_until_at"].to_numpy("datetime64[us]")
        none = np.isnat(t_from) | np.isnat(t_until)
        grid.trusted_from = np.where(none, 0, grid.col_of(np.where(none, t0, t_from)))
        grid.trusted_until = np.where(none, -1, grid.col_of(np.where(none, t0, t_until)))
    return grid
