"""The zone temperature a forecast expects over its horizon, per device.

Consumption and a gauge's reading follow the zone's temperature, and a season keeps
changing over a 30-day horizon: last week's temperature is not the next month's.

* ``last_year``: with a year of history, the mean of the same weeks of last year,
  shifted by how much the last week differs from the same week of last year;
* ``damped_trend``: else the least-squares line of the last :data:`TREND_DAYS` days,
  from its value at the last day on, its slope damped by :data:`DAMPING` per day
  (a season's trend holds for weeks; weather does not) and averaged over the horizon;
* ``recent_week``: fewer days than that: the mean of the last :data:`RECENT_DAYS`;
* ``none``: no zone temperature.

>>> import numpy as np
>>> t = np.array([[20.0 - 0.2 * d for d in range(40)]])
>>> a, basis = expected(t, np.array([39]), 30)
>>> str(basis[0]), bool(a[0] < t[0, 39])
('damped_trend', True)
"""

from __future__ import annotations

import numpy as np

TREND_DAYS = 28           # days of the recent trend
RECENT_DAYS = 7           # the last week
DAMPING = 0.95            # per day, of the continued trend
YEAR = 365


def _window_mean(temp: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean and count of the finite values of each row over columns [lo, hi]."""
    m = temp.shape[1]
    ok = np.isfinite(temp)
    c_n = np.concatenate([np.zeros((len(temp), 1)), np.cumsum(ok, axis=1)], axis=1)
    c_s = np.concatenate([np.zeros((len(temp), 1)), np.cumsum(np.where(ok, temp, 0.0), axis=1)],
                         axis=1)
    a, b = np.clip(lo, 0, m)[:, None], np.clip(hi + 1, 0, m)[:, None]
    n = (np.take_along_axis(c_n, b, 1) - np.take_along_axis(c_n, a, 1))[:, 0]
    s = (np.take_along_axis(c_s, b, 1) - np.take_along_axis(c_s, a, 1))[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan), n


def expected(temp: np.ndarray, end: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean zone temperature expected over days ``end + 1 .. end + horizon`` of each row of
    ``temp`` (n_devices, n_days; NaN where unknown), and its basis (see the module)."""
    n, m = temp.shape
    basis = np.full(n, "none", dtype=object)
    out = np.full(n, np.nan)
    if not m:
        return out, basis
    recent, n_recent = _window_mean(temp, end - RECENT_DAYS + 1, end)
    has_recent = n_recent > 0
    out[has_recent] = recent[has_recent]
    basis[has_recent] = "recent_week"
    # the trend: least squares over the last TREND_DAYS days
    cols = np.arange(m)[None, :]
    win = (cols > (end - TREND_DAYS)[:, None]) & (cols <= end[:, None]) & np.isfinite(temp)
    k = win.sum(axis=1)
    x = np.where(win, cols - end[:, None], 0.0)
    y = np.where(win, temp, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = x.sum(axis=1) / k, y.sum(axis=1) / k
        sxx = (np.where(win, x - mx[:, None], 0.0) ** 2).sum(axis=1)
        slope = (np.where(win, (x - mx[:, None]) * (y - my[:, None]), 0.0)).sum(axis=1) / sxx
    at_end = my - slope * mx
    h = np.arange(1, horizon + 1)
    damped = np.mean(DAMPING * (1 - DAMPING ** h) / (1 - DAMPING))
    trend = (k >= TREND_DAYS * 0.75) & np.isfinite(slope) & (sxx > 0)
    out = np.where(trend, at_end + slope * damped, out)
    basis[trend] = "damped_trend"
    # the same weeks of last year, where the calendar reaches back a year
    if m > YEAR:
        ly_ahead, n_ahead = _window_mean(temp, end - YEAR + 1, end - YEAR + horizon)
        ly_recent, n_ly = _window_mean(temp, end - YEAR - RECENT_DAYS + 1, end - YEAR)
        year = (end - YEAR - RECENT_DAYS + 1 >= 0) & (n_ahead >= 0.75 * horizon) & (n_ly > 0) \
            & has_recent
        out = np.where(year, ly_ahead + (recent - ly_recent), out)
        basis[year] = "last_year"
    return out, basis
