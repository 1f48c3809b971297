"""Holt-Winters with a damped additive trend: statsmodels fits, numpy applies.

statsmodels' ``ExponentialSmoothing(trend="add", damped_trend=True)`` is the
model. Its smoothing parameters are fitted by statsmodels on a few devices per
device type (:func:`fit_shared`); :func:`holt_damped` then runs exactly the
recursion statsmodels runs for known parameters and initial states, for all
devices at once (one numpy step per day instead of one Python model per
device). ``tests/power`` checks both give the same levels and forecasts.
"""

from __future__ import annotations

import importlib
import sys
import threading
import warnings
from dataclasses import dataclass

import numpy as np

#: The damping parameter is kept close to 1: battery consumption does not slow
#: down by itself, and a strong damping would push every empty date out.
PHI_BOUNDS = (0.9999, 0.99999)
DEFAULT = (0.2, 0.05, 0.9999)


@dataclass(frozen=True)
class HoltParams:
    alpha: float
    beta: float
    phi: float
    source: str  # "statsmodels:<n> fits" or "default"
    #: pooled per device type with the smoothing parameters (NaN: not pooled yet):
    #: the type prior (median rate, % per day) and the temperature shrinkage
    #: (mean and between-device variance of the consumption k and the gauge g)
    prior_rate: float = float("nan")
    k_mean: float = float("nan")
    k_tau2: float = float("nan")
    g_mean: float = float("nan")
    g_tau2: float = float("nan")
    #: a voltage-only gauge's load sag (see :mod:`tsfleet.power.sag`): the type's scale
    #: of its growth towards the cold (C), median sag at 20 C (V) and the range of daily
    #: zone temperatures its fit saw (C); NaN: none (no voltage-only device to learn from)
    sag_scale_c: float = float("nan")
    sag_v_at_20c: float = float("nan")
    sag_t_min_c: float = float("nan")
    sag_t_max_c: float = float("nan")
    #: whether the type's percent gauges show the chemistry's knee (1 yes, 0 no; NaN: none
    #: of them reached it yet), see :func:`tsfleet.power.knee.fit`
    knee_shown: float = float("nan")
    #: the model chosen most often by the type's own backtests (tsfleet.power.choice), for
    #: its devices with too little history; NaN: not pooled yet
    pooled_model: str | float = float("nan")
    #: the load sag's :attr:`tsfleet.power.sag.Pool.clear` (1/0; NaN: none)
    sag_clear: float = float("nan")
    #: the spread of its devices' sags (:attr:`tsfleet.power.sag.Pool.span_lo_v`, V)
    sag_span_lo_v: float = float("nan")
    sag_span_hi_v: float = float("nan")

    @property
    def is_pooled(self) -> bool:
        return bool(np.isfinite([self.prior_rate, self.k_mean, self.k_tau2, self.g_mean,
                                 self.g_tau2]).all())


def holt_damped(y: np.ndarray, start: np.ndarray, end: np.ndarray, level0: np.ndarray,
                trend0: np.ndarray, alpha, beta, phi):
    """Run the damped Holt recursion on rows of ``y`` between ``start`` and ``end`` (inclusive).

    ``y`` is (n_series, n_steps); ``level0``/``trend0`` are the states before
    ``start`` (statsmodels' ``initialization_method="known"``); ``alpha``,
    ``beta``, ``phi`` are per row. Returns the final level, the final trend and
    the one-step-ahead errors (NaN outside each row's span).
    """
    n, m = y.shape
    lvl, trd = level0.astype(float).copy(), trend0.astype(float).copy()
    err = np.full((n, m), np.nan)
    alpha, beta, phi = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (alpha, beta, phi))
    for j in range(m):
        on = (start <= j) & (j <= end)
        if not on.any():
            continue
        pred = lvl[on] + phi[on] * trd[on]
        new = alpha[on] * y[on, j] + (1 - alpha[on]) * pred
        err[on, j] = y[on, j] - pred
        trd[on] = beta[on] * (new - lvl[on]) + (1 - beta[on]) * phi[on] * trd[on]
        lvl[on] = new
    return lvl, trd, err


def damped_sum(phi, h) -> np.ndarray:
    """sum_{i=1..h} phi**i for real h >= 0 (phi < 1)."""
    phi = np.asarray(phi, float)
    return phi * (1 - phi ** np.asarray(h, float)) / (1 - phi)


def steps_to_reach(level, trend, phi, target) -> np.ndarray:
    """Steps h at which level + trend * damped_sum(phi, h) first equals ``target`` (inf: never)."""
    level, trend, phi, target = np.broadcast_arrays(*(np.asarray(v, float)
                                                      for v in (level, trend, phi, target)))
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = 1 - (target - level) * (1 - phi) / (trend * phi)
        h = np.log(arg) / np.log(phi)
    h = np.where(level <= target, 0.0, h)
    ok = (level <= target) | ((trend < 0) & (arg > 0) & np.isfinite(h))
    return np.where(ok, np.maximum(h, 0.0), np.inf)


def preload(module: str = "statsmodels.tsa.holtwinters") -> threading.Thread | None:
    """Import ``module`` (statsmodels' Holt-Winters: seconds of Python) in a background
    thread while the caller runs SQL and numpy; a later import waits for it. None if it
    is already imported."""
    if module in sys.modules:
        return None
    thread = threading.Thread(target=importlib.import_module, args=(module,), daemon=True)
    thread.start()
    return thread


def fit_statsmodels(y: np.ndarray, optimized: bool = True, params: HoltParams | None = None,
                    level0: float | None = None, trend0: float | None = None):
    """One statsmodels fit (the model itself; also the naive per-device baseline)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if optimized:
            model = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                         initialization_method="estimated",
                                         bounds={"damping_trend": PHI_BOUNDS})
            return model.fit(use_brute=False)
        model = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                     initialization_method="known",
                                     initial_level=level0, initial_trend=trend0)
        return model.fit(smoothing_level=params.alpha, smoothing_trend=params.beta,
                         damping_trend=params.phi, optimized=False)


def fit_sample(y: np.ndarray) -> tuple[float, float, float] | None:
    """One sample series' statsmodels parameters (alpha, beta, phi), or None when the fit
    fails or is not finite: a failed fit just does not vote in :func:`pool_fits`."""
    try:
        res = fit_statsmodels(y)
    except Exception:  # noqa: BLE001 - a failed fit just does not vote
        return None
    p = res.params
    vals = (p["smoothing_level"], p["smoothing_trend"], p["damping_trend"])
    return tuple(float(v) for v in vals) if all(np.isfinite(vals)) else None


def pool_fits(fits: list[tuple[float, float, float] | None]) -> HoltParams:
    """Median parameters over the sample fits of one device type (default without any)."""
    fits = [f for f in fits if f is not None]
    if not fits:
        return HoltParams(*DEFAULT, source="default")
    a, b, phi = np.median(np.array(fits), axis=0)
    return HoltParams(float(a), float(b), float(phi), source=f"statsmodels:{len(fits)} fits")


def fit_shared(samples: list[np.ndarray], map_fn=map) -> HoltParams:
    """Median statsmodels parameters over sample series of one device type. ``map_fn``
    runs :func:`fit_sample` over the samples (``map``; an engine's map runs them apart)."""
    return pool_fits(list(map_fn(fit_sample, samples)))
