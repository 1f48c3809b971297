"""Daily battery series of many devices as aligned numpy arrays.

The daily aggregation happens in SQL (view ``battery_daily``); this module
reads it once for all requested devices, keeps each device's current
discharge segment (the days after its last reset), puts the levels on a
common calendar grid at noon of each day (interpolating the day means from
their mean observation times, so gaps neither shift nor break a series), and
converts levels to their charge-equivalent (see :mod:`tsfleet.power.chemistry`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from tsfleet.power import patterns, sag
from tsfleet.power.chemistry import charge_from_level
from tsfleet.store import query_text

DAY_S = 86400.0
_SQL_DIR = Path(__file__).resolve().parent / "sql"   # this package's parametrized queries
PREV_DAYS = 14              # the previous segment's rate: its last two weeks' slope, or
                            #   its slope after a step among its last four weeks
PREV_ABOVE_KNEE_PCT = 5.0   # ... over its days this far above the gauge's knee (points)
PREV_MIN_LEVEL_PCT = 10.0   # ... and above this level (a voltage gauge clips at 0 %)
RESET_RISE_PCT = 8.0        # a rise over the hour before that ends a reset (as the daily
                            #   reset test: a swap, the top of a charge ramp)
DAY_RISE_PCT = 5.0          # a day's rise above the days before it that is a reset (as the
                            #   view battery_daily), after temperature for a voltage gauge
COMPENSATE_DAYS = 10        # ... the days before it that predict it


@dataclass
class Series:
    """Per-device arrays; 2-D ones are (n_devices, n_days) on the calendar grid."""

    device_id: np.ndarray
    device_type: np.ndarray
    chemistry: np.ndarray
    is_rechargeable: np.ndarray
    knee: np.ndarray
    gain: np.ndarray
    day0: np.datetime64          # the grid's first day (midnight UTC)
    level: np.ndarray            # % at noon, NaN outside [start, end]
    charge: np.ndarray           # charge-equivalent level, same shape
    temperature: np.ndarray      # zone daily temperature_c, NaN where unknown
    start: np.ndarray            # first column of the current segment (-1: no data)
    end: np.ndarray              # last column with data (-1: no data)
    n_days: np.ndarray           # days with readings in the segment
    last_observed_at: np.ndarray  # datetime64[us], NaT without data
    last_level: np.ndarray       # % last daily mean (a reset on the last day: the readings
                                 #   after it)
    last_level_t: np.ndarray     # its mean observation time, days since day0 (NaN: none)
    prev_rate: np.ndarray        # % per day over the previous segment (NaN: none)
    voltage_only: np.ndarray     # the level comes from a voltage (no battery_pct reports)
    seg_slope: np.ndarray        # charge-equivalent %/day over the segment's daily means at
    seg_sd: np.ndarray           #   their mean observation times; residual SD (NaN: < 3 days)
    seg_stt: np.ndarray          # sum of squared time deviations (days^2) of those means
    curves: dict | None = None   # curve key -> (levels %, open-circuit pack volts) of its curve
    sag_v_at_20c: np.ndarray | None = None  # voltage-only: load sag removed (V at 20 C), else NaN
    sag_scale_c: np.ndarray | None = None   # ... and its scale of growth towards the cold (C)
    sag_pool: dict | None = None  # device type -> sag.Pool the correction used
    #: voltage-only: how far the last level could be below / above the one read with the
    #: sag chosen, over the sags its own series cannot tell apart (points), else 0
    level_span_lo: np.ndarray | None = None
    level_span_hi: np.ndarray | None = None
    knee_nominal: np.ndarray | None = None  # the chemistry's knee (%), 0: none; ``knee`` is
                                 #   the one applied (percent gauges: only their own)
    curve_key: np.ndarray | None = None  # "curve_id*cells": the key of ``curves``
    has_curve: np.ndarray | None = None  # the device's curve has points
    curve_id: np.ndarray | None = None   # the curve a voltage is read through (None: none)
    after_reset: np.ndarray | None = None  # the current segment began at a reset (a new cell)

    @property
    def n(self) -> int:
        return len(self.device_id)


def load(con, devices: list[str] | None = None, until: datetime | None = None,
         correct_sag: bool = True) -> Series:
    """Read the daily levels (before ``until``, if given) of battery devices, with the load
    sag of voltage-only devices removed unless ``correct_sag`` is false (then
    :func:`tsfleet.power.sag.correct` does it, e.g. with pooled values of an earlier run)."""
    dev = con.execute(query_text(_SQL_DIR, "battery_devices"), dict(devices=devices)).df()
    # no knee is imposed: a percent fuel gauge has its own linearisation, and a level read
    # through a cell curve is the curve's state of charge (the curve holds the cell's end
    # of life); either gets the chemistry's knee only where its history shows one
    # (tsfleet.power.knee)
    dev["knee"] = 0.0
    cut = pd.Timestamp(until) if until is not None else None
    daily = con.execute(
        "select b.device_id, b.day, b.level_pct, b.mean_observed_at, b.last_observed_at, "
        # as of a cut, the last day before it cannot be confirmed by the day after it
        "case when ?::timestamp is not null and b.next_day >= ?::timestamp "
        "then b.is_reset_day_unconfirmed else b.is_reset_day end as is_reset_day, "
        "b.has_replacement "
        "from battery_daily b "
        "where b.device_id in (select unnest(?::varchar[])) "
        "and (?::timestamp is null or b.day < ?::timestamp) "
        "order by b.device_id, b.day",
        [cut, cut, list(dev["device_id"]), cut, cut]).df()
    temps = con.execute(
        "select zone, day, temperature_c from zone_temperature_daily "
        "where ?::timestamp is null or day < ?::timestamp", [cut, cut]).df()
    # the fleet's calendar, whichever devices are read: a forecast of a few devices
    # computes exactly what a forecast of the fleet computes for them
    grid = con.execute("select min(day), max(day) from battery_day_stats "
                       "where ?::timestamp is null or day < ?::timestamp", [cut, cut]).fetchall()[0]
    seg = con.execute("select curve_id, l_lo, l_hi, v_lo, v_hi from battery_curve_segments "
                      "order by curve_id, l_lo").df()
    curves = {}
    for (c, cells), _ in dev.groupby(["curve_id", "cells"]):
        g = seg[seg["curve_id"] == c]
        if len(g):
            curves[_curve_key(c, cells)] = (
                np.r_[g["l_lo"].to_numpy(float), g["l_hi"].iloc[-1]],
                np.r_[g["v_lo"].to_numpy(float), g["v_hi"].iloc[-1]] * cells)
    keys = np.array([_curve_key(c, k) for c, k in zip(dev["curve_id"], dev["cells"],
                                                      strict=True)], dtype=object)
    s = build(dev, daily, temps, grid)
    s = replace(s, knee_nominal=dev["knee_nominal"].to_numpy(float), curve_key=keys,
                has_curve=np.isin(keys, list(curves)),
                curve_id=np.where(dev["curve_id"].isna(), None, dev["curve_id"]).astype(object))
    s = replace(after_last_reset(con, s, cut), curves=curves)
    return sag.correct(s) if correct_sag else s


def _curve_key(curve_id, cells) -> str | None:
    return None if curve_id is None or pd.isna(curve_id) else f"{curve_id}*{int(cells)}"


def after_last_reset(con, s: Series, cut: pd.Timestamp | None = None) -> Series:
    """``s`` with the last level of each device whose last day holds a reset taken from
    the readings after the reset (``sql/after_last_reset.sql`` beside this file), not
    from the day's mean, which mixes the old battery and the new one. A device whose
    readings of that day aged out keeps the day's mean."""
    at_reset = np.flatnonzero((s.end >= 0) & (s.start > s.end))
    if not len(at_reset):
        return s
    day = (s.day0 + s.end[at_reset].astype("timedelta64[D]")).astype("datetime64[D]")
    got = con.execute(query_text(_SQL_DIR, "after_last_reset"), dict(
        devices=list(s.device_id[at_reset]), days=[d.item() for d in day], cut=cut,
        rise_pct=RESET_RISE_PCT)).df()
    if got.empty:
        return s
    last, last_t = s.last_level.copy(), s.last_level_t.copy()
    at = pd.Index(s.device_id).get_indexer(got["device_id"])
    last[at] = got["level_pct"].to_numpy(float)
    epoch_day0 = (s.day0 - np.datetime64("1970-01-01", "D")).astype(float)
    last_t[at] = got["epoch_s"].to_numpy(float) / DAY_S - epoch_day0
    return replace(s, last_level=last, last_level_t=last_t)


def build(dev: pd.DataFrame, daily: pd.DataFrame, temps: pd.DataFrame,
          grid: tuple | None = None) -> Series:
    """The arrays of :class:`Series` from the daily rows; ``grid`` = (first, last day) of
    the calendar (default: the days of ``daily``)."""
    n = len(dev)
    ids = dev["device_id"].to_numpy(object)
    if len(daily):
        lo, hi = grid if grid is not None else (daily["day"].min(), daily["day"].max())
        day0 = np.datetime64(pd.Timestamp(lo).to_datetime64(), "D")
        n_cols = int((np.datetime64(pd.Timestamp(hi).to_datetime64(), "D")
                      - day0).astype(int)) + 1
    else:
        day0, n_cols = np.datetime64("1970-01-01", "D"), 0
    level = np.full((n, n_cols), np.nan)
    temperature = np.full((n, n_cols), np.nan)
    start = np.full(n, -1)
    end = np.full(n, -1)
    n_days = np.zeros(n, dtype=int)
    last_at = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    last_level, last_level_t = np.full(n, np.nan), np.full(n, np.nan)
    prev_rate = np.full(n, np.nan)
    after_reset = np.zeros(n, dtype=bool)
    seg_slope, seg_sd, seg_stt = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    dev_knee, dev_gain = dev["knee"].to_numpy(float), dev["gain"].to_numpy(float)
    # a previous segment's rate is read above the chemistry's knee, applied or not: a
    # percent gauge that shows no knee loses a few days, one that bends is not misread
    trust_knee = dev["knee_nominal"].to_numpy(float) if "knee_nominal" in dev else dev_knee
    if len(temps) and n_cols:
        zi = pd.Index(pd.unique(dev["zone"]))
        zcol = (temps["day"].to_numpy("datetime64[D]") - day0).astype(int)
        zr = zi.get_indexer(temps["zone"])
        keep = (zcol >= 0) & (zcol < n_cols) & (zr >= 0)
        zgrid = np.full((len(zi), n_cols), np.nan)
        zgrid[zr[keep], zcol[keep]] = temps["temperature_c"].to_numpy(float)[keep]
        temperature = zgrid[zi.get_indexer(dev["zone"])]
    if len(daily):
        row = pd.Index(ids).get_indexer(daily["device_id"])
        col = (daily["day"].to_numpy("datetime64[D]") - day0).astype(int)
        t = ((daily["mean_observed_at"].to_numpy("datetime64[us]") - day0.astype("datetime64[us]"))
             / np.timedelta64(1, "s")) / DAY_S
        y = daily["level_pct"].to_numpy(float)
        reset = daily["is_reset_day"].to_numpy(bool)
        replaced = (daily["has_replacement"].to_numpy(bool) if "has_replacement" in daily
                    else np.zeros(len(daily), dtype=bool))
        t_day = temperature[row, np.clip(col, 0, n_cols - 1)]
        volt_only = (dev["voltage_only"].to_numpy(bool) if "voltage_only" in dev
                     else np.zeros(n, dtype=bool))
        last_obs = daily["last_observed_at"].to_numpy("datetime64[us]")
        q_all = charge_from_level(y, dev_knee[row], dev_gain[row])
        bounds = np.flatnonzero(np.diff(row)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(row)], strict=True):
            i = row[lo]
            r = np.flatnonzero(reset[lo:hi])
            if volt_only[i] and len(r):
                r = resets_beyond_temperature(r, y[lo:hi], t[lo:hi], t_day[lo:hi],
                                              replaced[lo:hi])
            first = lo + (r[-1] + 1 if len(r) else 0)
            after_reset[i] = len(r) > 0
            if len(r):
                prev_rate[i] = _previous_rate(t[lo:hi], q_all[lo:hi], r, y[lo:hi] >= max(
                    trust_knee[i] + PREV_ABOVE_KNEE_PCT, PREV_MIN_LEVEL_PCT))
            last_at[i] = last_obs[hi - 1]
            last_level[i], last_level_t[i] = y[hi - 1], t[hi - 1]
            if first >= hi:           # the last day is a reset: nothing after it yet
                start[i], end[i] = col[hi - 1] + 1, col[hi - 1]
                continue
            ok = np.isfinite(y[first:hi])
            if not ok.any():
                continue
            tt, yy = t[first:hi][ok], y[first:hi][ok]
            seg_slope[i], seg_sd[i], seg_stt[i] = _slope(tt, q_all[first:hi][ok])
            cols = np.arange(col[first:hi][ok][0], col[first:hi][ok][-1] + 1)
            level[i, cols] = np.interp(cols + 0.5, tt, yy)
            start[i], end[i], n_days[i] = cols[0], cols[-1], ok.sum()
    knee = dev["knee"].to_numpy(float)
    gain = dev["gain"].to_numpy(float)
    return Series(
        device_id=ids, device_type=dev["device_type"].to_numpy(object),
        chemistry=dev["chemistry"].to_numpy(object),
        is_rechargeable=dev["is_rechargeable"].to_numpy(bool), knee=knee, gain=gain,
        day0=day0, level=level, charge=charge_from_level(level, knee[:, None], gain[:, None]),
        temperature=temperature, start=start, end=end, n_days=n_days,
        last_observed_at=last_at, last_level=last_level, last_level_t=last_level_t,
        prev_rate=prev_rate, after_reset=after_reset,
        seg_slope=seg_slope, seg_sd=seg_sd, seg_stt=seg_stt,
        voltage_only=(dev["voltage_only"].to_numpy(bool) if "voltage_only" in dev
                      else np.zeros(n, dtype=bool)))


def resets_beyond_temperature(r: np.ndarray, y: np.ndarray, t: np.ndarray, temp: np.ndarray,
                              replaced: np.ndarray) -> np.ndarray:
    """The reset days ``r`` of a voltage-only device whose rise survives temperature.

    A voltage read through a flat curve moves by many points with the temperature (the
    cell's coefficient, the load sag in the cold): the end of a cold spell reads as a
    rise. A reset day without a ``battery_replaced`` event is kept only where the level
    of the day after it (of the day itself, if last) stands more than
    :data:`DAY_RISE_PCT` above what the :data:`COMPENSATE_DAYS` days before it predict
    from their own trend and temperature dependence (least squares on time and the
    zone's daily temperature). Without 4 such days or a temperature, the day is kept.
    """
    keep, prev = [], -1
    for k in r:
        lo = max(prev + 1, k - COMPENSATE_DAYS)
        ok = np.flatnonzero(np.isfinite(y[lo:k]) & np.isfinite(temp[lo:k])) + lo
        j = k + 1 if k + 1 < len(y) else k
        if replaced[k] or len(ok) < 4 or not np.isfinite(temp[j]):
            keep.append(k)
            prev = k
            continue
        x = np.c_[np.ones(len(ok)), t[ok] - t[k], temp[ok] - temp[ok].mean()]
        x_j = np.array([1.0, t[j] - t[k], temp[j] - temp[ok].mean()])
        if np.ptp(temp[ok]) <= 0:
            x, x_j = x[:, :2], x_j[:2]
        coef = np.linalg.lstsq(x, y[ok], rcond=None)[0]
        if y[j] - x_j @ coef > DAY_RISE_PCT:
            keep.append(k)
            prev = k
    return np.array(keep, dtype=int)


def _slope(t: np.ndarray, q: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope of ``q`` on ``t`` (days), residual SD and sum of squared
    time deviations. The daily means sit at their mean observation times: a device that
    started reporting in the evening has a first day much shorter than 24 hours."""
    dt = t - t.mean()
    stt = float((dt * dt).sum())
    if len(t) < 2 or stt <= 0:
        return np.nan, np.nan, 0.0
    slope = float((dt * (q - q.mean())).sum() / stt)
    resid = q - q.mean() - slope * dt
    sd = float(np.sqrt((resid ** 2).sum() / (len(t) - 2))) if len(t) >= 3 else np.nan
    return slope, sd, stt


def _previous_rate(t: np.ndarray, q: np.ndarray, resets: np.ndarray,
                   linear: np.ndarray | None = None) -> float:
    """Discharge rate (charge-equivalent % per day) at the end of the last complete
    segment before the current one (see :func:`_latest_rate`), over its days where the
    gauge is ``linear`` if it has 5 of them.

    A battery replaced when low spent its last days below the gauge's knee, where the
    charge-equivalent depends on the nominal knee rather than the cell's own, and a
    voltage-only gauge clips at 0 %: the days above them give the rate.
    Consecutive reset days (a charge spread over midnight) are one reset; a
    segment with fewer than 5 days is skipped for the one before it.
    """
    for j in range(len(resets) - 1, -1, -1):
        lo = resets[j - 1] + 1 if j >= 1 else 0
        hi = resets[j] - 1                   # the day before a reset is often mixed
        ok = np.flatnonzero(np.isfinite(q[lo:hi])) + lo
        if len(ok) < 5:
            continue
        if linear is not None and linear[ok].sum() >= 5:
            ok = ok[linear[ok]]
        return _latest_rate(t[ok], q[ok])
    return np.nan


def _latest_rate(t: np.ndarray, q: np.ndarray) -> float:
    """The rate (% per day) of the last :data:`PREV_DAYS` days of ``q``, or of the days
    after a step change among the last twice as many (as :mod:`tsfleet.power.patterns`
    finds one: the best split into two lines, significant and a large enough change)."""
    keep = t >= t[-1] - 2 * PREV_DAYS
    t, q = t[keep] - t[keep].mean(), q[keep]
    n = len(t)
    if n >= 5 + patterns.MIN_AFTER_STEP:
        # prefix sums: a line's slope and SSE over any [lo, hi) in O(1)
        c = np.vstack([np.zeros(6), np.cumsum(np.c_[np.ones(n), t, t * t, q, t * q, q * q],
                                              axis=0)])
        splits = np.arange(5, n - patterns.MIN_AFTER_STEP + 1)
        left = _line_sse(c[splits] - c[0])
        right = _line_sse(c[n] - c[splits])
        total = left[1] + right[1]
        best = int(np.argmin(total))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = right[0][best] / left[0][best]
        if patterns.is_step(_line_sse(c[n] - c[0])[1][0], total[best], n, ratio):
            return float(-right[0][best])
    last = t >= t[-1] - PREV_DAYS
    dt = t[last] - t[last].mean()
    return float(-(dt * q[last]).sum() / (dt * dt).sum())


def _line_sse(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and residual sum of squares of least-squares lines from their sums
    (columns: n, t, t^2, q, t q, q^2; one row per line)."""
    n, st, stt, sq, stq, sqq = np.moveaxis(np.atleast_2d(sums), -1, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vtt, vtq = stt - st * st / n, stq - st * sq / n
        slope = vtq / vtt
        return slope, np.maximum(sqq - sq * sq / n - vtq * slope, 0.0)
