"""Vectorized tests on a grid of residual series (rows are sensors).

- :func:`trend_test`: OLS of the residual on time with Newey-West (HAC,
  Bartlett kernel) standard errors. The same estimator as statsmodels'
  ``OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": False})``
  on a gapless series (a test checks this); with gaps, lags are counted in
  hours rather than in rows, which is what autocorrelation in time means.
- :func:`cusum_test`: the CUSUM of the demeaned residual, scaled by its
  long-run standard deviation; under no change it follows the Kolmogorov
  distribution (Brownian bridge), which gives the p-value.
- :func:`long_run_variance`: Bartlett-weighted autocovariances through one FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import special, stats


def autocovariances(u: np.ndarray, maxlags: int) -> np.ndarray:
    """(rows, maxlags + 1): sum_t g_t g_{t-l} for l = 0..maxlags (NaN counts as 0).

    Lags are columns (hours). One FFT per block of rows, zero-padded to at
    least ``n + maxlags`` so that the circular products equal the linear ones.
    """
    g = np.nan_to_num(u)
    n = g.shape[1]
    size = sp_fft.next_fast_len(n + maxlags + 1, real=True)
    out = np.empty((g.shape[0], maxlags + 1))
    for lo in range(0, g.shape[0], 1024):  # bounded memory
        f = sp_fft.rfft(g[lo:lo + 1024], n=size, axis=1, workers=2)
        out[lo:lo + 1024] = sp_fft.irfft(f.real ** 2 + f.imag ** 2, n=size, axis=1,
                                         workers=2)[:, :maxlags + 1]
    return out


def long_run_variance(u: np.ndarray, maxlags: int) -> np.ndarray:
    """sum_t g_t^2 + 2 sum_l w_l sum_t g_t g_{t-l} per row (NaN counts as 0).

    That is n times the Bartlett long-run variance of ``u``: the "meat" of
    the Newey-West sandwich. Lags are columns (hours).
    """
    w = 1.0 - np.arange(maxlags + 1) / (maxlags + 1.0)
    w[1:] *= 2.0
    return np.maximum(autocovariances(u, maxlags) @ w, 0.0)


@dataclass
class TrendResult:
    slope: np.ndarray      # residual units per hour
    intercept: np.ndarray  # at the sensor's mean time
    t_center: np.ndarray   # mean hour index of the sensor's readings
    se: np.ndarray         # HAC standard error of the slope
    t: np.ndarray
    p: np.ndarray
    resid: np.ndarray      # (n_sensors, n_hours), NaN where missing
    n: np.ndarray


def trend_test(x: np.ndarray, maxlags: int = 72) -> TrendResult:
    """OLS ``x = a + b * hour`` per row with Newey-West standard errors."""
    m = ~np.isnan(x)
    n = m.sum(1).astype(float)
    xz = np.where(m, x, 0.0)
    h = np.arange(x.shape[1], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_center = (m @ h) / n
        c = np.where(m, h[None, :] - t_center[:, None], 0.0)
        sxx = np.einsum("ij,ij->i", c, c)
        xm = xz.sum(1) / n
        slope = np.einsum("ij,ij->i", c, xz) / sxx
        resid = np.where(m, xz - xm[:, None] - slope[:, None] * c, np.nan)
        meat = long_run_variance(np.where(m, c * resid, 0.0), maxlags)
        se = np.sqrt(meat) / sxx
        t = slope / se
    p = 2 * stats.norm.sf(np.abs(t))
    return TrendResult(slope, xm, t_center, se, t, np.where(np.isfinite(p), p, 1.0), resid, n)


@dataclass
class StepResult:
    stat: np.ndarray       # sup |CUSUM| / (sigma_LR sqrt(n))
    p: np.ndarray
    at: np.ndarray         # column of the first reading after the change (-1: none)
    size: np.ndarray       # mean after minus mean before, residual units


def cusum_test(x: np.ndarray, maxlags: int = 72) -> StepResult:
    """CUSUM change-in-mean test per row, long-run variance under the step model."""
    m = ~np.isnan(x)
    n = m.sum(1).astype(float)
    xz = np.where(m, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xz.sum(1) / n
        cs = np.cumsum(xz, axis=1)
        k = np.cumsum(m, axis=1)
        s = cs - mean[:, None] * k
        at = np.argmax(np.abs(s), axis=1)                 # last column before the change
        ka = k[np.arange(len(at)), at].astype(float)
        sum_before = cs[np.arange(len(at)), at]
        before = sum_before / ka
        after = (xz.sum(1) - sum_before) / (n - ka)
        col = np.arange(x.shape[1])[None, :]
        fitted = np.where(col <= at[:, None], before[:, None], after[:, None])
        lrv = long_run_variance(np.where(m, xz - fitted, 0.0), maxlags) / n
        stat = np.abs(s[np.arange(len(at)), at]) / np.sqrt(lrv * n)
    stat = np.where(np.isfinite(stat), stat, 0.0)
    p = special.kolmogorov(stat)
    nxt = np.where(m & (col > at[:, None]), col, x.shape[1]).min(1)
    at_col = np.where((nxt < x.shape[1]) & (n - ka > 0), nxt, -1)
    return StepResult(stat, np.clip(p, 0.0, 1.0), at_col, np.nan_to_num(after - before))


def bh_cutoff(p: np.ndarray, q: float) -> float:
    """The largest p-value BH at level ``q`` rejects (0 when none)."""
    p = np.sort(np.asarray(p, float))
    ok = p <= q * np.arange(1, len(p) + 1) / max(len(p), 1)
    return float(p[np.flatnonzero(ok).max()]) if ok.any() else 0.0
