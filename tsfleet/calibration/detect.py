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
- ``first_detectable_at``: the first day end at which the data up to then
  already met the final rule (trend p-value under the fleet's BH cut-off and
  drift at least the watch level), replayed with cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsfleet.calibration import stats
from tsfleet.calibration.series import ResidualGrid


@dataclass(frozen=True)
class DriftParams:
    fdr: float = 0.01            # Benjamini-Hochberg level across the fleet
    maxlags_h: int = 72          # Newey-West / long-run variance lags, hours
    k_hourly: int = 72           # readings in the baseline and latest level windows
    k_sparse: int = 12
    rate_window_h: int = 336
    rate_window_sparse_h: int = 720
    step_jump_share: float = 0.5


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
        v = x[rows, cols]
        c = cols.astype(float)
        self.cs = {name: np.concatenate([[0.0], np.cumsum(a)]) for name, a in
                   (("x", v), ("t", c), ("tt", c * c), ("tx", c * v))}

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

    def slope(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """OLS slope per hour over readings lo..hi-1, and the centred sum of squares."""
        n = (hi - lo).astype(float)
        st, stt = self.span("t", lo, hi), self.span("tt", lo, hi)
        sx, stx = self.span("x", lo, hi), self.span("tx", lo, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            sxx = stt - st * st / n
            return (stx - st * sx / n) / sxx, sxx


def detect_drift(grid: ResidualGrid, watch_pct: np.ndarray, params: DriftParams = DriftParams(),
                 other_p: np.ndarray | None = None) -> DriftResult:
    """Run the tests on every sensor of ``grid``; see the module docstring.

    ``other_p``: p-values of sensors tested earlier and not in ``grid``; they
    take part in the Benjamini-Hochberg control (incremental runs).
    """
    other_p = np.array([]) if other_p is None else np.asarray(other_p, float)
    x = grid.x
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
    q = np.ones(n_s)
    pooled = np.concatenate([p[enough], other_p])
    q[enough] = stats.benjamini_hochberg(pooled)[: int(enough.sum())]
    cutoff = stats.bh_cutoff(pooled, params.fdr)
    significant = enough & (q <= params.fdr)

    kk = np.minimum(k, n)
    baseline = flat.mean(np.zeros(n_s, int), kk)
    level = flat.mean(n - kk, n)
    drift = level - baseline
    window = np.where(sparse, params.rate_window_sparse_h, params.rate_window_h)
    lo = flat.upto(last_col - window)
    rate_h, _ = flat.slope(lo, n)
    rate = np.where(n - lo >= 3, rate_h * 24, np.nan)

    # A step: most of the change happens across the change point.
    at_idx = np.where(step.at >= 0, flat.upto(step.at - 1), 0)
    j = np.minimum(24, np.minimum(at_idx, n - at_idx))
    jump = flat.mean(at_idx, at_idx + j) - flat.mean(at_idx - j, at_idx)
    is_step = (significant & (step.at >= 0) & (j >= 3)
               & (np.abs(np.nan_to_num(jump)) >= params.step_jump_share * np.abs(drift))
               & (np.abs(np.nan_to_num(jump)) >= watch_pct))

    first = _first_detectable(flat, trend, k, n, baseline, cutoff, watch_pct, n_h)
    flagged = significant & (np.abs(drift) >= watch_pct)
    first = np.where(flagged & (first < 0), last_col, first)
    first = np.where(flagged, first, -1)
    return DriftResult(
        device_id=grid.device_ids, expected_source=grid.source,
        segment_start_at=grid.hour_at(np.where(n > 0, first_col, -1)), n_hours=n,
        drift_pct=drift, offset_pct=level, rate_pct_per_day=rate,
        trend_t=trend.t, trend_p=trend.p, step_stat=step.stat, step_p=step.p,
        step_at=grid.hour_at(step.at), step_pct=step.size, p_value=p, q_value=q,
        is_step=is_step, significant=significant, enough=enough,
        first_detectable_at=grid.hour_at(first), p_cutoff=cutoff,
        as_of=grid.hour_at(np.array([n_h - 1]))[0] if n_s else np.datetime64("NaT"))


def _first_detectable(flat: _Flat, trend: stats.TrendResult, k: np.ndarray, n: np.ndarray,
                      baseline: np.ndarray, cutoff: float, watch_pct: np.ndarray,
                      n_h: int) -> np.ndarray:
    """Column of the first day end where the final rule already held (-1: never)."""
    from scipy.stats import norm

    first = np.full(len(n), -1)
    if cutoff <= 0:
        return first
    with np.errstate(invalid="ignore", divide="ignore"):
        # Long-run variance of the trend residual per reading: meat / Sxx.
        lrv = (trend.se * trend.se) * _sxx(flat, n)
    t_crit = norm.isf(cutoff / 4)          # 2 x two-sided trend p <= cutoff
    for day_end in range(23, n_h, 24):
        c = flat.upto(np.full(len(n), day_end))
        ok = (c >= 2 * k) & (first < 0)
        if not ok.any():
            continue
        zero = np.zeros(len(n), int)
        slope, sxx = flat.slope(zero, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            tstat = np.abs(slope) / np.sqrt(lrv / sxx)
        level = flat.mean(c - k, c)
        hit = ok & (tstat >= t_crit) & (np.abs(level - baseline) >= watch_pct)
        first[hit] = day_end
    return first


def _sxx(flat: _Flat, n: np.ndarray) -> np.ndarray:
    return flat.slope(np.zeros(len(n), int), n)[1]
