"""Environment-monitor hours as dense arrays, with the validity checks.

The monitors' hourly history (raw readings where kept, the hourly rollup where
retention aged them out) is read in one scan and aggregated per monitor, metric
and hour with ``np.bincount`` into arrays of shape (monitors, metrics, hours):
temperature, humidity and vibration, then the declared environmental metrics.
The data is dense by nature (every monitor reports every hour), so this is a
few array operations; a DuckDB hash aggregate into millions of groups and a
temporary table of them cost 5x more CPU here (10,000 devices: 6 M readings).

The rules are those of the view ``environment_monitor_readings`` (sql/views/401),
which shows them at SQL level: an hour is out of range when a reading of it is
physically implausible (a declared metric's readings outside its declared range
never reach the store), stuck when its monitor's 12-hour block (or the block
before or after) holds at least 10 readings of one identical value and the hour
has only that value. Invalid hours are excluded, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from tsfleet.environment import queries

METRICS = ("temperature_c", "humidity_pct", "vibration_g")
BLOCK_HOURS = 12
MIN_STUCK_READINGS = 10


@dataclass
class MonitorHours:
    """Per monitor (axis 0), metric (axis 1) and hour (axis 2) from ``hour0``."""

    metrics: tuple[str, ...]  # axis 1
    device_id: np.ndarray   # (M,) object
    zone: np.ndarray        # (M,) object
    hour0: int              # first hour, hours since the epoch (UTC)
    n: np.ndarray           # readings per cell
    mean: np.ndarray        # mean value (NaN without readings)
    out_of_range: np.ndarray
    stuck: np.ndarray
    stuck_value: np.ndarray  # the stuck value of stuck cells (NaN elsewhere)

    @property
    def hours(self) -> int:
        return self.n.shape[2]

    @property
    def valid(self) -> np.ndarray:
        return (self.n > 0) & ~self.out_of_range & ~self.stuck


def load(con: duckdb.DuckDBPyConnection,
         declared: tuple[str, ...] = ()) -> MonitorHours | None:
    """The monitors' hours of METRICS and the ``declared`` environmental metrics, with
    flags, or None without any monitor reading."""
    metrics = (*METRICS, *declared)
    mons = con.execute(queries.sql("monitors")).fetchnumpy()
    p = {"metrics": list(metrics)}
    raw = con.execute(queries.sql("monitor_raw"), p).fetchnumpy()
    rolled = con.execute(queries.sql("monitor_rollup"), p).fetchnumpy()
    hours = np.concatenate([raw["hour"], rolled["hour"]]).astype(np.int64)
    if not len(hours):
        return None
    hour0 = int(hours.min())
    n_hours = int(hours.max()) - hour0 + 1
    n_mon = len(mons["device_id"])
    n_met = len(metrics)
    size = n_mon * n_met * n_hours

    def flat(part: dict) -> np.ndarray:
        return ((part["monitor_index"].astype(np.int64) * n_met + part["metric_index"])
                * n_hours
                + part["hour"].astype(np.int64) - hour0)

    ir, iu = flat(raw), flat(rolled)
    value = raw["value"].astype(float)
    n = (np.bincount(ir, minlength=size)
         + np.bincount(iu, weights=rolled["n_readings"].astype(float), minlength=size))
    total = (np.bincount(ir, weights=value, minlength=size)
             + np.bincount(iu, weights=rolled["value_sum"].astype(float), minlength=size))
    lo = np.full(size, np.inf)
    hi = np.full(size, -np.inf)
    np.minimum.at(lo, ir, value)
    np.maximum.at(hi, ir, value)
    if len(iu):
        np.minimum.at(lo, iu, rolled["value_min"].astype(float))
        np.maximum.at(hi, iu, rolled["value_max"].astype(float))
    shape = (n_mon, n_met, n_hours)
    n, total, lo, hi = (a.reshape(shape) for a in (n, total, lo, hi))
    has = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has, total / n, np.nan)
    oor = np.zeros(shape, bool)
    oor[:, 0] = (lo[:, 0] < -40) | (hi[:, 0] > 85)
    oor[:, 1] = (lo[:, 1] <= 0) | (hi[:, 1] > 100)
    oor[:, 2] = hi[:, 2] > 16
    oor &= has
    stuck, stuck_value = _stuck(hour0, n, lo, hi)
    return MonitorHours(metrics, mons["device_id"].astype(object),
                        mons["zone"].astype(object), hour0, n, mean, oor, stuck & has,
                        stuck_value)


def _stuck(hour0: int, n: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Stuck cells: 12-hour UTC blocks (from midnight) with >= 10 readings of one
    value, and the hours of that value in the block and its two neighbours."""
    n_mon, n_met, n_hours = n.shape
    pad_front = hour0 % BLOCK_HOURS
    n_blocks = -(-(pad_front + n_hours) // BLOCK_HOURS)
    pad_back = n_blocks * BLOCK_HOURS - pad_front - n_hours

    def blocks(a: np.ndarray, fill: float) -> np.ndarray:
        padded = np.pad(a, ((0, 0), (0, 0), (pad_front, pad_back)), constant_values=fill)
        return padded.reshape(n_mon, n_met, n_blocks, BLOCK_HOURS)

    b_n = blocks(n, 0).sum(axis=3)
    b_lo = blocks(lo, np.inf).min(axis=3)
    b_hi = blocks(hi, -np.inf).max(axis=3)
    value = np.where((b_n >= MIN_STUCK_READINGS) & (b_lo == b_hi), b_lo, np.nan)
    block_of = (np.arange(n_hours) + pad_front) // BLOCK_HOURS
    stuck = np.zeros(n.shape, bool)
    stuck_value = np.full(n.shape, np.nan)
    single = lo == hi
    for step in (0, -1, 1):
        nb = np.clip(block_of + step, 0, n_blocks - 1)
        inside = (block_of + step >= 0) & (block_of + step < n_blocks)
        v = value[:, :, nb]
        hit = single & inside & (lo == v) & ~stuck
        stuck_value = np.where(hit, v, stuck_value)
        stuck |= hit
    return stuck, stuck_value


def faults(mh: MonitorHours | None, con: duckdb.DuckDBPyConnection, end, *,
           dead_after_hours: int) -> pd.DataFrame:
    """Stuck episodes (per monitor, metric and stuck value), out-of-range episodes
    (per monitor and metric) and dead monitors (silent for more than
    ``dead_after_hours`` before ``end``, or never heard; heard until the end of
    their last hour with readings)."""
    cols = ["device_id", "zone", "metric", "fault", "from_at", "to_at", "n_readings"]
    frames = []
    all_mons = con.execute(queries.sql("monitors")).df()
    last_at = pd.Series(pd.NaT, index=all_mons["device_id"], dtype="datetime64[us]")
    if mh is not None:
        def at(hour: np.ndarray) -> np.ndarray:
            return (np.asarray(mh.hour0 + hour, np.int64) * 3_600_000_000).astype(
                "datetime64[us]")

        for fault, mask, key in (("stuck", mh.stuck & ~mh.out_of_range, True),
                                 ("out_of_range", mh.out_of_range, False)):
            m, k, h = np.nonzero(mask)
            if not len(m):
                continue
            cells = pd.DataFrame({"m": m, "k": k, "h": h, "n": mh.n[m, k, h],
                                  "v": mh.stuck_value[m, k, h] if key else 0.0})
            g = cells.groupby(["m", "k", "v"], as_index=False).agg(
                h_from=("h", "min"), h_to=("h", "max"), n_readings=("n", "sum"))
            frames.append(pd.DataFrame({
                "device_id": mh.device_id[g["m"]], "zone": mh.zone[g["m"]],
                "metric": np.array(mh.metrics, dtype=object)[g["k"]], "fault": fault,
                "from_at": at(g["h_from"].to_numpy()), "to_at": at(g["h_to"].to_numpy()),
                "n_readings": g["n_readings"].to_numpy().astype(np.int64)}))
        heard = (mh.n > 0).any(axis=1)
        last = np.where(heard.any(axis=1), mh.hours - 1 - np.argmax(heard[:, ::-1], axis=1), -1)
        ok = last >= 0
        last_at.loc[mh.device_id[ok]] = at(last[ok] + 1)
    cutoff = pd.Timestamp(end) - pd.Timedelta(hours=dead_after_hours)
    dead = last_at[last_at.isna() | (last_at < cutoff)]
    zone = all_mons.set_index("device_id")["zone"]
    frames.append(pd.DataFrame({
        "device_id": dead.index.to_numpy(object), "zone": zone.loc[dead.index].to_numpy(object),
        "metric": None, "fault": "dead", "from_at": dead.to_numpy(), "to_at": pd.NaT,
        "n_readings": np.zeros(len(dead), np.int64)}))
    out = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else pd.DataFrame(columns=cols)
    return out[cols]
