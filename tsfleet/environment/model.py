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


def _columns(cells: pd.DataFrame) -> dict[str, np.ndarray]:
    """The cells' columns as plain numpy arrays (fast to slice in the profile loop)."""
    return {c: (cells[c].astype(str).to_numpy(object) if c == "device_type"
                else cells[c].to_numpy(float))
            for c in ("device_type", "age_years", "temperature_c", "vibration_g",
                      "daily_swing_c", "humidity_pct")}


def design(cells: pd.DataFrame | dict, threshold_c: float, types: list[str]) -> tuple[
        np.ndarray, list[str]]:
    """The model matrix of ``cells`` for temperature threshold ``threshold_c``."""
    c = cells if isinstance(cells, dict) else _columns(cells)
    is_type = [c["device_type"] == t for t in types]
    h = c["humidity_pct"] - HUMIDITY_CENTER
    cols = ([m.astype(float) for m in is_type]  # one intercept per device type
            + [c["age_years"], np.maximum(c["temperature_c"] - threshold_c, 0.0),
               c["vibration_g"], c["daily_swing_c"]]
            + [np.where(m, h, 0.0) for m in is_type])
    names = ([f"type:{t}" for t in types]
             + ["age_years", "temperature_excess_c", "vibration_g", "daily_swing_c"]
             + [f"humidity_pct:{t}" for t in types])
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
    types = sorted(str(t) for t in cells["device_type"].unique())
    cols = _columns(cells)
    hours = cells["device_hours"].to_numpy(float)
    offset = np.log(hours)
    temp = cells["temperature_c"].to_numpy(float)
    # Thresholds that leave at least 1% of the device-hours above them.
    order = np.argsort(temp)
    cum = np.cumsum(hours[order]) / hours.sum()
    hi = temp[order][min(np.searchsorted(cum, 0.99), len(cum) - 1)]
    lo = temp[order][min(np.searchsorted(cum, 0.05), len(cum) - 1)]
    grid = np.arange(np.floor(lo), np.floor(hi) + grid_step_c / 2, grid_step_c)
    if not len(grid):
        grid = np.array([float(np.floor(hi))])
    tried: dict[float, tuple] = {}
    start = None
    # The design changes with the threshold in one column only: build it once.
    x_all, _ = design(cols, float(grid[0]), types)
    t_col = len(types) + 1
    varies = x_all.std(axis=0) > 0
    varies[: len(types)] = True

    def profile(thr: float) -> None:
        nonlocal start
        if thr in tried:
            return
        excess = np.maximum(temp - thr, 0.0)
        x_all[:, t_col] = excess
        keep = varies.copy()
        keep[t_col] = excess.std() > 0
        try:
            params, llf = _irls(y, x_all[:, keep], offset,
                                start if start is not None and len(start) == keep.sum() else None,
                                len(types))
        except np.linalg.LinAlgError:  # pragma: no cover - degenerate grid point
            return
        start = params
        tried[thr] = (llf, thr, keep, params)

    # Coarse pass every third grid point, then the neighbours of the best.
    for thr in grid[::3]:
        profile(float(thr))
    if tried:
        centre = max(tried.values(), key=lambda t: t[0])[1]
        for thr in grid[np.abs(grid - centre) <= 2 * grid_step_c]:
            profile(float(thr))
    best = max(tried.values(), key=lambda t: t[0]) if tried else None
    if best is None:  # pragma: no cover - every grid point degenerate
        return Fit(outcome, reason="the model could not be fitted at any threshold")
    _, thr, keep, params = best
    x, names = design(cols, thr, types)
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
    """Failures per device-hour from the fitted model (arrays broadcast).

    ``device_type`` is one type (str) or an array of types.
    """
    h = np.asarray(humidity_pct, dtype=float) - HUMIDITY_CENTER
    if isinstance(device_type, str):
        if device_type in fit.types:
            lp = fit.coef(f"type:{device_type}") + fit.coef(f"humidity_pct:{device_type}") * h
        else:
            lp = np.mean([fit.coef(f"type:{t}") for t in fit.types]) + 0.0 * h
    else:
        device_type = np.asarray(device_type, dtype=object)
        lp = np.full(np.broadcast(device_type, h).shape,
                     np.mean([fit.coef(f"type:{t}") for t in fit.types]) if fit.types else 0.0)
        for t in fit.types:
            is_t = device_type == t
            lp = np.where(is_t, fit.coef(f"type:{t}") + fit.coef(f"humidity_pct:{t}") * h, lp)
    lp = (lp + fit.coef("age_years") * np.asarray(age_years, dtype=float)
          + fit.coef("temperature_excess_c")
          * np.maximum(np.asarray(temperature_c, dtype=float) - (fit.threshold_c or 0.0), 0)
          + fit.coef("vibration_g") * np.asarray(vibration_g, dtype=float)
          + fit.coef("daily_swing_c") * np.asarray(daily_swing_c, dtype=float))
    return np.exp(lp)
