"""Poisson GLMs of failure and reboot counts on environmental exposure.

The data are exposure cells (device type, age band, binned environment) with
device-hours and event counts. The model is a Poisson GLM with a log link and
``log(device_hours)`` as offset, adjusting for device type and age:

    log rate = a_type + b_age*age + b_T*max(0, T - tau) + b_V*V + b_S*swing
               + sum_type b_H[type]*(H - 50)

Temperature acts above a threshold ``tau`` that is found by profile
likelihood over a grid. Humidity gets one coefficient per device type, so an
effect limited to one type shows up as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

HUMIDITY_CENTER = 50.0
FACTOR_UNITS = {
    "temperature_excess_c": "per degC above the threshold",
    "vibration_g": "per g RMS",
    "daily_swing_c": "per degC of daily temperature swing",
    "humidity_pct": "per %RH",
    "age_years": "per year of age",
}


@dataclass
class Fit:
    """A fitted model of one outcome, or the reason there is none."""

    outcome: str
    names: list[str] = field(default_factory=list)
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bse: np.ndarray = field(default_factory=lambda: np.zeros(0))
    threshold_c: float | None = None
    n_events: int = 0
    reason: str | None = None
    types: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def coef(self, name: str) -> float:
        return float(self.params[self.names.index(name)]) if name in self.names else 0.0


def design(cells: pd.DataFrame, threshold_c: float, types: list[str]) -> tuple[np.ndarray,
                                                                               list[str]]:
    """The model matrix of ``cells`` for temperature threshold ``threshold_c``."""
    cols, names = [], []
    for t in types:  # one intercept per device type
        cols.append((cells["device_type"] == t).to_numpy(float))
        names.append(f"type:{t}")
    cols.append(cells["age_years"].to_numpy(float))
    names.append("age_years")
    cols.append(np.maximum(cells["temperature_c"].to_numpy(float) - threshold_c, 0.0))
    names.append("temperature_excess_c")
    cols.append(cells["vibration_g"].to_numpy(float))
    names.append("vibration_g")
    cols.append(cells["daily_swing_c"].to_numpy(float))
    names.append("daily_swing_c")
    h = cells["humidity_pct"].to_numpy(float) - HUMIDITY_CENTER
    for t in types:
        cols.append(np.where(cells["device_type"] == t, h, 0.0))
        names.append(f"humidity_pct:{t}")
    return np.column_stack(cols), names


def _irls(y: np.ndarray, x: np.ndarray, offset: np.ndarray, start: np.ndarray | None,
          n_intercepts: int, max_iter: int = 50, tol: float = 1e-9) -> tuple[np.ndarray, float]:
    """Poisson GLM by iteratively reweighted least squares; returns (params, llf).

    A small, fast fit for the threshold profile (statsmodels fits the chosen one).
    """
    if start is None:
        start = np.zeros(x.shape[1])
        rate = np.log(max(y.sum(), 0.5) / np.exp(offset).sum())
        start[:n_intercepts] = rate
    beta = start.copy()
    llf_old = -np.inf
    for _ in range(max_iter):
        eta = np.clip(x @ beta + offset, -50, 50)
        mu = np.exp(eta)
        z = eta - offset + (y - mu) / mu
        xtw = x.T * mu
        beta = np.linalg.solve(xtw @ x + 1e-10 * np.eye(x.shape[1]), xtw @ z)
        mu = np.exp(np.clip(x @ beta + offset, -50, 50))
        llf = float(np.sum(y * np.log(mu) - mu))
        if abs(llf - llf_old) < tol * (1 + abs(llf)):
            break
        llf_old = llf
    return beta, llf


def fit_outcome(cells: pd.DataFrame, outcome: str, *, min_events: int = 10,
                grid_step_c: float = 1.0) -> Fit:
    """Fit the GLM of ``outcome`` (column ``n_<outcome>s``) with a profiled threshold.

    The threshold is profiled with a fast IRLS over a 1 degC grid; statsmodels
    then fits the model at the best threshold for the estimates and their
    standard errors.
    """
    y = cells[f"n_{outcome}s"].to_numpy(float)
    if y.sum() < min_events:
        return Fit(outcome, reason=f"only {int(y.sum())} {outcome}s with environment data; "
                                   f"need {min_events}")
    types = sorted(cells["device_type"].unique())
    hours = cells["device_hours"].to_numpy(float)
    offset = np.log(hours)
    temp = cells["temperature_c"].to_numpy(float)
    # Thresholds that leave at least 1% of the device-hours above them.
    order = np.argsort(temp)
    cum = np.cumsum(hours[order]) / hours.sum()
    hi = temp[order][min(np.searchsorted(cum, 0.99), len(cum) - 1)]
    lo = temp[order][min(np.searchsorted(cum, 0.05), len(cum) - 1)]
    grid = np.arange(np.floor(lo), np.floor(hi) + grid_step_c / 2, grid_step_c)
    best, start = None, None
    for thr in (grid if len(grid) else [float(np.floor(hi))]):
        x, names = design(cells, float(thr), types)
        keep = x.std(axis=0) > 0
        keep[: len(types)] = True
        try:
            params, llf = _irls(y, x[:, keep], offset,
                                start if start is not None and len(start) == keep.sum() else None,
                                len(types))
        except np.linalg.LinAlgError:  # pragma: no cover - degenerate grid point
            continue
        start = params
        if best is None or llf > best[0]:
            best = (llf, float(thr), keep, params)
    if best is None:  # pragma: no cover - every grid point degenerate
        return Fit(outcome, reason="the model could not be fitted at any threshold")
    _, thr, keep, params = best
    x, names = design(cells, thr, types)
    res = sm.GLM(y, x[:, keep], family=sm.families.Poisson(), offset=offset).fit(
        start_params=params, maxiter=100)
    names = [n for n, k in zip(names, keep, strict=True) if k]
    return Fit(outcome, names, np.asarray(res.params), np.asarray(res.bse), thr,
               int(y.sum()), types=types)


def effect_rows(fit: Fit) -> list[dict]:
    """One row per environmental factor (and per type for humidity), plus age."""
    rows = []
    z = stats.norm.ppf(0.975)
    if not fit.ok:
        return [dict(method="glm_poisson", outcome=fit.outcome, factor="all", device_type=None,
                     note=fit.reason)]
    for i, name in enumerate(fit.names):
        if name.startswith("type:"):
            continue
        factor, _, dtype = name.partition(":")
        b, se = float(fit.params[i]), float(fit.bse[i])
        p = float(2 * stats.norm.sf(abs(b / se))) if se > 0 else np.nan
        unit = FACTOR_UNITS[factor]
        if factor == "temperature_excess_c":
            unit = f"per degC above {fit.threshold_c:g} degC"
        rows.append(dict(method="glm_poisson", outcome=fit.outcome, factor=factor,
                         device_type=dtype or None, estimate=b, ci_low=b - z * se,
                         ci_high=b + z * se, rate_ratio=float(np.exp(b)), p_value=p,
                         n=fit.n_events, unit=unit,
                         note="adjustment, not tested" if factor == "age_years" else
                         "log rate ratio; adjusted for device type and age"))
    return rows


def predict_rate(fit: Fit, device_type, age_years, temperature_c, humidity_pct, vibration_g,
                 daily_swing_c) -> np.ndarray:
    """Failures per device-hour from the fitted model (arrays broadcast)."""
    device_type = np.asarray(device_type, dtype=object)
    lp = np.zeros(np.broadcast(device_type, np.asarray(temperature_c)).shape)
    for t in fit.types:
        is_t = device_type == t
        lp = lp + np.where(is_t, fit.coef(f"type:{t}") + fit.coef(f"humidity_pct:{t}")
                           * (np.asarray(humidity_pct) - HUMIDITY_CENTER), 0.0)
    known = np.isin(device_type, fit.types)
    mean_type = np.mean([fit.coef(f"type:{t}") for t in fit.types]) if fit.types else 0.0
    lp = np.where(known, lp, mean_type)
    lp = (lp + fit.coef("age_years") * np.asarray(age_years)
          + fit.coef("temperature_excess_c")
          * np.maximum(np.asarray(temperature_c) - (fit.threshold_c or 0.0), 0)
          + fit.coef("vibration_g") * np.asarray(vibration_g)
          + fit.coef("daily_swing_c") * np.asarray(daily_swing_c))
    return np.exp(lp)
