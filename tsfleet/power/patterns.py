"""Discharge patterns per device, from its daily charge-equivalent series.

All devices at once, with prefix sums over the calendar grid:

* a least-squares line over the current segment (rate, residual spread);
* the latest change point for *step changes*, e.g. after a reporting-interval change:
  the best split into two separate lines (an F statistic against one line), then
  the best split of the span after it, and so on (a firmware update and, weeks
  later, a new reporting interval are two steps);
* the sensitivity of the discharge (and of the gauge) to the zone's temperature,
  over the span after the change point (:mod:`tsfleet.power.temperature`).

Patterns, first match wins: ``insufficient_data`` (fewer than
:data:`MIN_DAYS` days), ``erratic`` (daily levels scatter more than
:data:`ERRATIC_SD` around the line), ``charging`` (rechargeable), ``step_change``,
``temperature_sensitive``, ``accelerating`` (below or near the gauge's knee),
``steady``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tsfleet.power import temperature

if TYPE_CHECKING:
    from tsfleet.power.series import Series

MIN_DAYS = 7
ERRATIC_SD = 0.6          # % of level, residual SD of daily means around the line
STEP_F = 40.0
STEP_RATIO = 1.25
MIN_AFTER_STEP = 4        # days after a change point before it can be trusted
MAX_STEPS = 3             # change points looked for, each after the one before


@dataclass
class Patterns:
    pattern: np.ndarray
    rate: np.ndarray          # % per day over the segment (charge-equivalent)
    rate_recent: np.ndarray   # % per day after the change point (or = rate)
    change_col: np.ndarray    # column of the change point, -1 if none
    change_ratio: np.ndarray  # rate after / rate before the change point (1: none)
    resid_sd: np.ndarray
    temp_coef: np.ndarray     # relative rate change per degree C (device's own estimate)
    temp_t: np.ndarray
    temp_se: np.ndarray       # standard error of temp_coef
    temp: temperature.TempFit  # the fit used by the forecast (shrunk coefficients)
    fit_start: np.ndarray     # first column the forecast model is fitted on


def _sums(y: np.ndarray, mask: np.ndarray):
    t = np.broadcast_to(np.arange(y.shape[1], dtype=float), y.shape)
    w = mask.astype(float)
    yz = np.where(mask, y, 0.0)
    cols = [w, w * t, w * t * t, yz, yz * t, yz * yz]
    return [np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(c, axis=1)], axis=1)
            for c in cols]


def _sse(s, lo, hi):
    """SSE of a line over columns [lo, hi) from prefix sums; also slope."""
    n, st, stt, sy, sty, syy = (np.take_along_axis(c, hi, 1) - np.take_along_axis(c, lo, 1)
                                for c in s)
    with np.errstate(divide="ignore", invalid="ignore"):
        vtt = stt - st * st / n
        vty = sty - st * sy / n
        vyy = syy - sy * sy / n
        slope = vty / vtt
        sse = np.maximum(vyy - vty * slope, 0.0)
    return sse, slope, n


def line_fit(y: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Least-squares line per row over columns [lo, hi]: (intercept at col 0, slope, resid SD)."""
    mask = np.isfinite(y)
    s = _sums(y, mask)
    a, b = np.maximum(lo, 0)[:, None], (np.maximum(hi, -1) + 1)[:, None]
    sse, slope, n = (v[:, 0] for v in _sse(s, a, b))
    n_, st, sy = (np.take_along_axis(c, b, 1)[:, 0] - np.take_along_axis(c, a, 1)[:, 0]
                  for c in (s[0], s[1], s[3]))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(n_ >= 2, slope, 0.0)
        slope = np.where(np.isfinite(slope), slope, 0.0)
        intercept = np.where(n_ > 0, (sy - slope * st) / n_, np.nan)
        sd = np.sqrt(sse / np.maximum(n_ - 2, 1))
    return intercept, slope, np.where(n_ >= 3, sd, np.nan)


def _change_point(sums, lo: np.ndarray, hi: np.ndarray):
    """The best split of columns [lo, hi) into two lines (the right part starts at the
    split) where it is significant: (found, split, rate ratio right/left, right rate,
    residual SD of the two lines)."""
    n = len(lo)
    cols = np.arange(sums[0].shape[1])[None, :]
    lo, hi = lo[:, None], hi[:, None]
    c = np.broadcast_to(cols, (n, cols.shape[1]))
    valid = (c >= lo + 5) & (c <= hi - MIN_AFTER_STEP)
    cc = np.clip(c, lo, hi)
    sse_l, slope_l, _ = _sse(sums, np.broadcast_to(lo, c.shape), cc)
    sse_r, slope_r, _ = _sse(sums, cc, np.broadcast_to(hi, c.shape))
    total = np.where(valid, sse_l + sse_r, np.inf)
    best = np.argmin(total, axis=1)
    rows = np.arange(n)
    has = np.isfinite(total[rows, best])
    sse_full, _, n_full = (v[:, 0] for v in _sse(sums, lo, hi))
    sse2 = total[rows, best]
    with np.errstate(divide="ignore", invalid="ignore"):
        r_right = -slope_r[rows, best]
        rr = r_right / -slope_l[rows, best]
        sd = np.sqrt(sse2 / np.maximum(n_full - 4, 1))
    return has & is_step(sse_full, sse2, n_full, rr), best, rr, r_right, sd


def is_step(sse_one, sse_two, n, ratio):
    """Whether two lines (residual sum of squares ``sse_two``) over ``n`` days are a step
    change against one (``sse_one``): an F statistic above :data:`STEP_F` and a rate
    ratio (after / before) beyond :data:`STEP_RATIO` either way."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = ((sse_one - sse_two) / 2) / (sse_two / np.maximum(n - 4, 1))
        return (f > STEP_F) & np.isfinite(ratio) & ((ratio > STEP_RATIO)
                                                     | (ratio < 1 / STEP_RATIO))


def classify(s: Series, pooled: dict | None = None) -> Patterns:
    """Patterns of every device; ``pooled``: the temperature shrinkage per device type
    (see :func:`tsfleet.power.temperature.fit`), else pooled from these devices."""
    n = s.n
    y = s.charge
    mask = np.isfinite(y)
    _, slope, sd = line_fit(y, s.start, s.end)
    rate = -slope
    # change point: best split c (right part starts at c)
    change = np.full(n, -1)
    ratio = np.ones(n)
    rate_recent = rate.copy()
    if y.shape[1] >= 2 * MIN_DAYS:
        sums = _sums(y, mask)
        lo, rows = np.maximum(s.start, 0), np.arange(n)
        for _ in range(MAX_STEPS):      # the latest change: split again after each one found
            step, best, rr, r_right, sd_step = _change_point([c[rows] for c in sums], lo[rows],
                                                             s.end[rows] + 1)
            rows, best = rows[step], best[step]
            change[rows], ratio[rows], rate_recent[rows] = best, rr[step], r_right[step]
            sd[rows], lo[rows] = sd_step[step], best
            if not len(rows):
                break
    fit_start = np.where(change >= 0, change, s.start)
    tf = temperature.fit(y, s.temperature, fit_start, s.end, s.device_type, pooled)
    k, kse = tf.k_raw, tf.k_se
    with np.errstate(divide="ignore", invalid="ignore"):
        kt = k / kse
    level_now = (np.where(s.end >= 0, s.level[np.arange(n), np.maximum(s.end, 0)], np.nan)
                 if y.shape[1] else np.full(n, np.nan))
    pattern = np.select(
        [s.n_days < MIN_DAYS, sd > ERRATIC_SD, s.is_rechargeable, change >= 0,
         (kt > 3) & (k > 0.02), (s.knee > 0) & (level_now < s.knee + 10)],
        ["insufficient_data", "erratic", "charging", "step_change", "temperature_sensitive",
         "accelerating"], "steady")
    return Patterns(pattern.astype(object), rate, rate_recent, change, ratio, sd, k, kt, kse, tf,
                    fit_start)
