"""Temperature effects on a battery series, for all devices at once.

Two effects, both linear in the zone's daily temperature ``T`` (relative to
``T_ref``, the mean over the fitted span):

* *consumption*: the discharge rate is ``r * (1 + k * (T - T_ref))``, so the
  level falls by ``r * k`` more per degree-day: the level carries
  ``-r * k * C(t)`` with ``C`` the cumulative temperature anomaly (degree-days);
* *gauge*: the reported level itself moves with the temperature (a voltage-only
  device's load sag, a fuel gauge's compensation): ``+ g * (T(t) - T_ref)``.

One least-squares fit per device of the daily charge-equivalent level on
``1, t, C(t), T(t) - T_ref`` separates the two. Fitting levels against the
cumulative anomaly uses every day's level instead of the noisy day-to-day drops,
so ``k`` is estimated several times more precisely. Each device's ``k`` and
``g`` are then shrunk towards its device type's mean by their standard errors
(empirical Bayes, the spread between devices estimated from the fleet).

:func:`adjust` returns the series with both effects removed (what the level
would have been at ``T_ref``): the Holt-Winters model runs on that, and the
forecast adds the effects back at the expected future temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SPAN = 10           # days of fitted span before a temperature effect is estimated
K_CLIP = 0.15           # |k| per C beyond which an estimate is not physical
MIN_TAU = 1e-4          # floor of the between-device spread (per C for k, % per C for g)


@dataclass
class TempFit:
    known: np.ndarray        # the device has a zone temperature over enough of its span
    t_ref: np.ndarray        # C, mean over the fitted span
    k: np.ndarray            # consumption coefficient per C (shrunk), 0 where unknown
    g: np.ndarray            # gauge effect, % level per C (shrunk), 0 where unknown
    k_raw: np.ndarray
    k_se: np.ndarray
    cum_end: np.ndarray      # degree-days of anomaly accumulated over the span (C(end))
    adjusted: np.ndarray     # charge-equivalent series at T_ref (same shape as the input)
    pools: dict              # group -> (k_mean, k_tau2, g_mean, g_tau2) the shrinkage used


def _shrink(est: np.ndarray, se: np.ndarray, groups: np.ndarray, ok: np.ndarray,
            pooled: dict | None = None) -> tuple[np.ndarray, dict]:
    """Empirical-Bayes shrinkage of ``est`` towards each group's precision-weighted mean.

    ``pooled`` maps a group to its (mean, tau2) from an earlier run (so that a
    run over a few devices shrinks them exactly as a run over the fleet did);
    other groups are pooled from this run's devices. Returns the shrunk
    estimates and every group's (mean, tau2).
    """
    out = np.zeros(len(est))
    pools = {}
    for grp in np.unique(groups[ok]):
        sel = ok & (groups == grp)
        e, v = est[sel], se[sel] ** 2
        mean, tau2 = pooled[grp] if pooled and grp in pooled else pool(e, v)
        pools[grp] = (mean, tau2)
        out[sel] = mean + tau2 / (tau2 + v) * (e - mean)
    return out, pools


def pool(e: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Precision-weighted mean and between-device variance (DerSimonian-Laird).

    The DerSimonian-Laird estimate weighs each device by its precision, so a few
    devices with a huge standard error (a short or flat span) neither inflate
    nor hide the spread between devices, as a plain ``var(e) - mean(v)`` does.
    """
    w = 1.0 / v
    m0 = float(np.sum(w * e) / np.sum(w))
    q = float(np.sum(w * (e - m0) ** 2))
    c = float(np.sum(w) - np.sum(w ** 2) / np.sum(w))
    tau2 = (q - (len(e) - 1)) / c if len(e) > 2 and c > 0 else 0.0
    tau2 = max(tau2, MIN_TAU ** 2)
    w = 1.0 / (tau2 + v)
    return float(np.sum(w * e) / np.sum(w)), tau2


def _anomaly(temp: np.ndarray, start: np.ndarray, end: np.ndarray):
    """The span [start, end] of each row, its mean temperature ``t_ref``, the anomaly on the
    span (gaps filled with 0: the span mean), its cumulative sum (degree-days), the days
    since ``start``, and the rows whose temperature covers enough of the span."""
    n, m = temp.shape
    cols = np.arange(m)[None, :]
    span = (cols >= start[:, None]) & (cols <= end[:, None])
    have = span & np.isfinite(temp)
    n_t = have.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_ref = np.where(have, temp, 0.0).sum(axis=1) / n_t
    anom = np.where(have, temp - t_ref[:, None], 0.0)
    anom = np.where(span, anom, 0.0)
    cum = np.cumsum(anom, axis=1)
    ok_row = (n_t >= MIN_SPAN) & (n_t >= 0.8 * np.maximum(end - start + 1, 1)) & np.isfinite(t_ref)
    t = np.broadcast_to(cols.astype(float), (n, m)) - start[:, None]
    return span, t_ref, anom, cum, ok_row, t


def _lstsq_rows(xs: list[np.ndarray], y: np.ndarray, obs: np.ndarray, ok: np.ndarray):
    """Per row, the least squares of ``y`` on the regressors ``xs`` over the cells ``obs``:
    (rows fitted, coefficients, diagonal of (X'X)^-1, residual sum of squares, cells). A
    row is fitted where ``ok``, with at least :data:`MIN_SPAN` cells and a regular design."""
    n, p = len(y), len(xs)
    w = obs.astype(float)
    yz = np.where(obs, y, 0.0)
    xtx = np.empty((n, p, p))
    xty = np.empty((n, p))
    for a in range(p):
        xty[:, a] = (w * xs[a] * yz).sum(axis=1)
        for b in range(a, p):
            xtx[:, a, b] = xtx[:, b, a] = (w * xs[a] * xs[b]).sum(axis=1)
    n_obs = obs.sum(axis=1)
    known = ok & (n_obs >= MIN_SPAN)
    # a singular design (e.g. a constant temperature) carries no temperature information
    det = np.zeros(n)
    det[known] = np.linalg.det(xtx[known] / np.maximum(n_obs[known], 1)[:, None, None])
    known &= np.abs(det) > 1e-9
    beta = np.zeros((n, p))
    inv_diag = np.full((n, p), np.nan)
    sse = np.full(n, np.nan)
    if known.any():
        inv = np.linalg.inv(xtx[known])
        beta[known] = np.einsum("nab,nb->na", inv, xty[known])
        fitted = sum(beta[:, a, None] * xs[a] for a in range(p))
        sse[known] = (np.where(obs, y - fitted, 0.0) ** 2).sum(axis=1)[known]
        inv_diag[known] = np.einsum("naa->na", inv)
    return known, beta, inv_diag, sse, n_obs


def consumption_spread(y: np.ndarray, temp: np.ndarray, start: np.ndarray,
                       end: np.ndarray) -> np.ndarray:
    """Per row: the residual spread relative to the rate of the line whose rate follows the
    zone's temperature, level = a - r t - r k C(t), fitted by least squares over [start,
    end] without shrinkage or clipping (NaN where the temperature does not cover the span):
    how straight the levels are once a consumption that follows the temperature is
    allowed (:mod:`tsfleet.power.knee` holds a gauge's knee against it)."""
    span, _, _, cum, ok_row, t = _anomaly(temp, start, end)
    obs = span & np.isfinite(y) & ok_row[:, None]
    known, beta, _, sse, n_obs = _lstsq_rows([np.ones_like(t), t, cum], y, obs, ok_row)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(sse / np.maximum(n_obs - 3, 1)) / np.abs(beta[:, 1])
    return np.where(known, spread, np.nan)


def fit(y: np.ndarray, temp: np.ndarray, start: np.ndarray, end: np.ndarray,
        groups: np.ndarray, pooled: dict | None = None) -> TempFit:
    """Estimate both effects per row of ``y`` over columns [start, end].

    ``pooled`` maps a group to ``(k_mean, k_tau2, g_mean, g_tau2)`` to shrink
    towards instead of pooling this run's devices (see :func:`_shrink`).
    """
    n, m = y.shape
    # temperature on the span with gaps filled by the span mean (anomaly 0)
    span, t_ref, anom, cum, ok_row, t = _anomaly(temp, start, end)
    obs = span & np.isfinite(y) & ok_row[:, None]
    xs = [np.ones((n, m)), t, cum, anom]
    known, beta, inv_diag, sse, n_obs = _lstsq_rows(xs, y, obs, ok_row)
    cov_diag = np.full((n, 4), np.nan)
    if known.any():
        s2 = sse[known] / np.maximum(n_obs[known] - 4, 1)
        cov_diag[known] = s2[:, None] * inv_diag[known]
    rate = -beta[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        k_raw = -beta[:, 2] / rate
        k_se = np.sqrt(cov_diag[:, 2]) / np.abs(rate)
    known &= (rate > 0) & np.isfinite(k_raw) & np.isfinite(k_se) & (np.abs(k_raw) < K_CLIP)
    g_raw, g_se = beta[:, 3], np.sqrt(cov_diag[:, 3])
    pk = {t: v[:2] for t, v in (pooled or {}).items()}
    pg = {t: v[2:] for t, v in (pooled or {}).items()}
    k, k_pools = _shrink(k_raw, k_se, groups, known, pk)
    g, g_pools = _shrink(g_raw, g_se, groups, known, pg)
    k, g = np.where(known, k, 0.0), np.where(known, g, 0.0)
    pools = {t: k_pools[t] + g_pools[t] for t in k_pools}
    adjusted = y + (rate * k)[:, None] * cum - g[:, None] * anom
    adjusted = np.where(known[:, None], adjusted, y)
    cum_end = cum[np.arange(n), np.clip(end, 0, max(m - 1, 0))] if m else np.zeros(n)
    return TempFit(known, np.where(known, t_ref, np.nan), k, g,
                   np.where(known, k_raw, np.nan), np.where(known, k_se, np.nan),
                   np.where(known, cum_end, 0.0), adjusted, pools)
