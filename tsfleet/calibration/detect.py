"""Drift detection on the residual grid: the tests, the fleet-wide multiple
testing control, the verdict per sensor and when its drift became detectable.

Per sensor, on its residual (reading minus expected, % of scale) since its
last calibration:

- ``trend``: OLS on time with Newey-West errors (:func:`stats.trend_test`);
- ``step``: CUSUM change in mean (:func:`stats.cusum_test`);
- p-value: Bonferroni of the two (2 x the smaller), then Benjamini-Hochberg
  q-values across the fleet; significant when q <= ``fdr``;
- ``drift_pct``: mean of the last K readings minus mean of the first K
  (K = 72 for hourly sensors, 12 for sparser ones), the drift since the
  calibration; ``drift_rate_pct_per_day``: OLS slope over the last 14 days
  (30 for sparse sensors);
- verdict: ``step`` when the change is significant and most of it happens
  within a day (the jump across the CUSUM change point is at least half the
  drift), else ``needs_recalibration`` (|drift| >= tolerance), ``drifting``
  (>= watch level), ``watch`` (significant but smaller) or ``ok``;
- ``first_detectable_at``: the first hour at which the sequential rule
  fired on the data up to then: the mean of the latest ``m`` readings (24
  hourly, 6 sparse) differs from the baseline (the first K readings) by at
  least the watch level. A one-sided level rule of the CUSUM family with a
  short window, so it fires about half a day after the drift passes the watch
  level; it is replayed for every sensor (also those not flagged in the end,
  so that the benchmark can count its false alarms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsfleet.calibration import stats
from tsfleet.environment.multitest import fdr_bh


@dataclass(frozen=True)
class DriftParams:
    fdr: float = 0.01            # Benjamini-Hochberg level across the fleet
    maxlags_h: int = 72          # Newey-West / long-run variance lags, hours
    k_hourly: int = 72           # readings in the baseline and latest level windows
    k_sparse: int = 12
    rate_window_h: int = 336
    rate_window_sparse_h: int = 720
    step_jump_share: float = 0.5
    m_hourly: int = 72           # readings in the sequential rule's level window
    m_sparse: int = 12


@dataclass
class DriftResult:
    device_id: np.ndarray
    expected_source: np.ndarray
    segment_start_at: np.ndarray
    n_hours: np.ndarray
    drift_pct: np.ndarray
    offset_pct: np.ndarray
    rate_pct_per_day: np.ndarray
    trend_t: np.ndarray
    trend_p: np.ndarray
    step_stat: np.ndarray
    step_p: np.ndarray
    step_at: np.ndarray
    step_pct: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    is_step: np.ndarray
    significant: np.ndarray
    enough: np.ndarray
    first_detectable_at: np.ndarray
    p_cutoff: float
    as_of: np.datetime64


class _Flat:
    """The grid's readings in row-major order, with global cumulative sums."""

    def __init__(self, x: np.ndarray):
        rows, cols = np.nonzero(~np.isnan(x))
        self.n_rows, self.n_cols = x.shape
        self.cols = cols
        counts = np.bincount(rows, minlength=self.n_rows)
        self.off = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.count = counts
        self.key = rows.astype(np.int64) * self.n_cols + cols
        self.cs = {"x": np.concatenate([[0.0], np.cumsum(x[rows, cols])])}

    def upto(self, col: np.ndarray) -> np.ndarray:
        """Readings per row at or before column ``col`` (per row)."""
        rows = np.arange(self.n_rows)
        return np.searchsorted(self.key, rows * self.n_cols + col, side="right") - self.off

    def after(self, col: np.ndarray) -> np.ndarray:
        """Index (within row) of the first reading after ``col``."""
        return self.upto(col)

    def span(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sum of ``name`` over readings lo..hi-1 (indices within each row)."""
        c = self.cs[name]
        return c[self.off + hi] - c[self.off + lo]

    def mean(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.span("x", lo, hi) / (hi - lo)


def detect_drift(x: np.ndarray, watch_pct: np.ndarray, params: DriftParams = DriftParams(),
                 other_p: np.ndarray | None = None) -> DriftResult:
    """Run the tests on every row of the residual grid ``x``; see the module docstring.

    ``other_p``: p-values of sensors tested earlier and not in ``x``; they
    take part in the Benjamini-Hochberg control (incremental runs).
    """
    return finish(row_tests(x, watch_pct, params), params, other_p)


@dataclass
class RowTests:
    """What each sensor's tests found, before the fleet-wide control (columns: hours)."""

    n: np.ndarray
    first_col: np.ndarray
    last_col: np.ndarray
    enough: np.ndarray
    p: np.ndarray
    trend_t: np.ndarray
    trend_p: np.ndarray
    step_stat: np.ndarray
    step_p: np.ndarray
    step_at: np.ndarray
    step_size: np.ndarray
    drift: np.ndarray
    level: np.ndarray
    rate: np.ndarray
    jump: np.ndarray
    jump_ok: np.ndarray
    first_alarm: np.ndarray
    watch: np.ndarray
    n_cols: int


def drift_levels(x: np.ndarray, params: DriftParams) -> tuple[np.ndarray, np.ndarray]:
    """(drift_pct, enough) per row, as row_tests computes them, without the tests."""
    flat = _Flat(x)
    n = flat.count
    k = np.where(_sparse(flat), params.k_sparse, params.k_hourly)
    kk = np.minimum(k, n)
    return flat.mean(n - kk, n) - flat.mean(np.zeros(len(n), int), kk), n >= 2 * k


def _sparse(flat: _Flat) -> np.ndarray:
    n = flat.count
    cols = flat.cols if len(flat.cols) else np.zeros(1, int)
    first_col = np.where(n > 0, cols[np.minimum(flat.off, len(cols) - 1)], 0)
    last_col = np.where(n > 0, cols[np.minimum(flat.off + n - 1, len(cols) - 1)], 0)
    return n / np.maximum(last_col - first_col + 1, 1) < 0.5


def row_tests(x: np.ndarray, watch_pct: np.ndarray, params: DriftParams) -> RowTests:
    """Every per-sensor statistic; rows are independent of each other."""
    n_s, n_h = x.shape
    flat = _Flat(x)
    n = flat.count
    cols = flat.cols if len(flat.cols) else np.zeros(1, int)
    first_col = np.where(n > 0, cols[np.minimum(flat.off, len(cols) - 1)], 0)
    last_col = np.where(n > 0, cols[np.minimum(flat.off + n - 1, len(cols) - 1)], 0)
    density = n / np.maximum(last_col - first_col + 1, 1)
    sparse = density < 0.5
    k = np.where(sparse, params.k_sparse, params.k_hourly)
    enough = n >= 2 * k

    trend = stats.trend_test(x, params.maxlags_h)
    step = stats.cusum_test(x, params.maxlags_h)
    del trend.resid
    p = np.minimum(1.0, 2 * np.minimum(trend.p, step.p))
    p = np.where(enough, p, 1.0)

    kk = np.minimum(k, n)
    baseline = flat.mean(np.zeros(n_s, int), kk)
    level = flat.mean(n - kk, n)
    window = np.where(sparse, params.rate_window_sparse_h, params.rate_window_h)
    rate = _recent_slope(x, last_col, window) * 24

    at_idx = np.where(step.at >= 0, flat.upto(step.at - 1), 0)
    j = np.minimum(24, np.minimum(at_idx, n - at_idx))
    jump = flat.mean(at_idx, at_idx + j) - flat.mean(at_idx - j, at_idx)
    m = np.where(sparse, params.m_sparse, params.m_hourly)
    return RowTests(
        n=n, first_col=first_col, last_col=last_col, enough=enough, p=p, trend_t=trend.t,
        trend_p=trend.p, step_stat=step.stat, step_p=step.p, step_at=step.at,
        step_size=step.size, drift=level - baseline, level=level, rate=rate, jump=jump,
        jump_ok=(step.at >= 0) & (j >= 3), first_alarm=_first_alarm(flat, k, m, baseline,
                                                                    watch_pct),
        watch=np.asarray(watch_pct, float), n_cols=n_h)


def finish(r: RowTests, params: DriftParams, other_p: np.ndarray | None = None,
           ) -> DriftResult:
    """The fleet-wide control (Benjamini-Hochberg) and the per-sensor decision."""
    other_p = np.array([]) if other_p is None else np.asarray(other_p, float)
    n_s = len(r.n)
    q = np.ones(n_s)
    pooled = np.concatenate([r.p[r.enough], other_p])
    q[r.enough] = fdr_bh(pooled)[: int(r.enough.sum())]
    cutoff = stats.bh_cutoff(pooled, params.fdr)
    significant = r.enough & (q <= params.fdr)
    big_jump = np.abs(np.nan_to_num(r.jump))
    is_step = (significant & r.jump_ok
               & (big_jump >= params.step_jump_share * np.abs(r.drift))
               & (big_jump >= r.watch))
    flagged = significant & (np.abs(r.drift) >= r.watch)
    first = np.where(flagged & (r.first_alarm < 0), r.last_col, r.first_alarm)
    return DriftResult(
        device_id=np.array([]), expected_source=np.array([]),
        segment_start_at=np.where(r.n > 0, r.first_col, -1), n_hours=r.n,
        drift_pct=r.drift, offset_pct=r.level, rate_pct_per_day=r.rate,
        trend_t=r.trend_t, trend_p=r.trend_p, step_stat=r.step_stat, step_p=r.step_p,
        step_at=r.step_at, step_pct=r.step_size, p_value=r.p, q_value=q,
        is_step=is_step, significant=significant, enough=r.enough,
        first_detectable_at=first, p_cutoff=cutoff, as_of=np.datetime64("NaT"))


def _recent_slope(x: np.ndarray, last_col: np.ndarray, window: np.ndarray) -> np.ndarray:
    """OLS slope per hour over each row's readings in the ``window`` hours up to
    its last reading (NaN with fewer than 3)."""
    n_s = x.shape[0]
    if n_s == 0:
        return np.zeros(0)
    back = np.arange(int(window.max()))
    cols = last_col[:, None] - back[None, :]
    ok = (cols >= 0) & (back[None, :] < window[:, None])
    vals = np.where(ok, x[np.arange(n_s)[:, None], np.maximum(cols, 0)], np.nan)
    m = ~np.isnan(vals)
    n = m.sum(1)
    t = -back.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tc = np.where(m, t[None, :] - (m @ t / n)[:, None], 0.0)
        slope = (tc * np.where(m, vals, 0.0)).sum(1) / (tc * tc).sum(1)
    return np.where(n >= 3, slope, np.nan)


def _first_alarm(flat: _Flat, k: np.ndarray, m: np.ndarray, baseline: np.ndarray,
                 watch_pct: np.ndarray) -> np.ndarray:
    """Column of the first reading at which the mean of the latest ``m`` readings
    (after the baseline's ``k``) is at least the watch level away from the
    baseline (-1: never)."""
    n_s = len(k)
    total = len(flat.cols)
    if total == 0:
        return np.full(n_s, -1)
    row = np.repeat(np.arange(n_s), flat.count)
    pos = np.arange(total)
    j = pos - flat.off[row]                       # index within the row
    mm = m[row]
    ok = j >= k[row] + mm - 1
    cs = flat.cs["x"]
    lo = np.where(ok, pos + 1 - mm, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = (cs[pos + 1] - cs[lo]) / mm - baseline[row]
    hit = ok & (np.abs(shift) >= np.asarray(watch_pct, float)[row])
    first = np.full(n_s, total, np.int64)
    np.minimum.at(first, row[hit], pos[hit])
    return np.where(first < total, flat.cols[np.minimum(first, total - 1)], -1)
