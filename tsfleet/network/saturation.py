"""Performance under load: the load at which a gateway's latency turns up.

Per gateway, hourly latency is regressed on the message rate with a hinge
(segmented linear) model, ``latency = a + b * load + c * max(0, load - knee)``.
The knee is chosen on a grid of load quantiles by least squares; the final fit
at that knee is an ordinary least squares fit in statsmodels, whose t-test on
``c`` says whether latency really grows faster beyond the knee. A knee counts
as a saturation point only when it is significant (one-sided p below
``alpha``), the slope above it is at least ``min_slope_ratio`` times the slope
below, latency rises by at least ``min_rise`` (a share of the latency at the
knee) between the knee and the highest load, and enough hours lie beyond it.
Otherwise the gateway gets the fallback ``not_reached`` (no saturation in the
observed load range) or
``insufficient_data``, with the reason recorded.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> load = rng.uniform(0, 2, 500)
>>> latency = 20 + 2 * load + 40 * np.maximum(0, load - 1.2) + rng.normal(0, 1, 500)
>>> fit = fit_hinge(load, latency)
>>> fit.status, round(fit.knee, 1)
('fitted', 1.2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HingeFit:
    """The fitted relation of one gateway (``knee`` etc. are None unless fitted)."""

    status: str                   # fitted | not_reached | insufficient_data
    reason: str | None
    n: int
    knee: float | None = None
    intercept: float | None = None
    slope_below: float | None = None
    slope_above: float | None = None
    p_value: float | None = None
    r_squared: float | None = None


def fit_hinge(load: np.ndarray, latency: np.ndarray, *, n_knots: int = 40,
              min_points: int = 48, min_beyond: int = 12, min_slope_ratio: float = 3.0,
              min_rise: float = 0.25, alpha: float = 1e-3) -> HingeFit:
    """Fit ``latency ~ load`` with one hinge; see the module docstring."""
    x = np.asarray(load, dtype=float)
    y = np.asarray(latency, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < min_points:
        return HingeFit("insufficient_data", f"{n} hours with load and latency, need {min_points}",
                        n)
    if np.ptp(x) <= 1e-9 * max(1.0, abs(float(x.mean()))):
        return HingeFit("insufficient_data", "the load never varied", n)
    knots = np.unique(np.quantile(x, np.linspace(0.1, 0.95, n_knots)))
    beyond = (x[None, :] > knots[:, None]).sum(axis=1)
    knots = knots[beyond >= min_beyond]
    if not len(knots):
        return HingeFit("insufficient_data", "too few distinct load levels", n)
    best_k = float(knots[int(np.argmin(_hinge_ssr(x, y, knots)))])
    from statsmodels.regression.linear_model import OLS  # heavy import: only when fitting

    X = np.c_[np.ones(n), x, np.maximum(0, x - best_k)]
    res = OLS(y, X).fit()
    a, b, c = (float(v) for v in res.params)
    p_two = float(res.pvalues[2])
    p = p_two / 2 if c > 0 else 1 - p_two / 2
    above = b + c
    fit = dict(n=n, knee=best_k, intercept=a, slope_below=b, slope_above=above, p_value=p,
               r_squared=float(res.rsquared))
    if p >= alpha:
        return HingeFit("not_reached", f"no significant bend up to {x.max():.3g} msg/s "
                        f"(p = {p:.2g})", **fit)
    if above <= 0 or above < min_slope_ratio * max(b, 0.0):
        return HingeFit("not_reached", f"latency grows only {above / b if b > 0 else 0:.1f}x "
                        f"faster beyond {best_k:.3g} msg/s (need {min_slope_ratio:g}x)", **fit)
    rise = above * (float(x.max()) - best_k)
    at_knee = a + b * best_k
    if rise < min_rise * abs(at_knee):
        return HingeFit("not_reached", f"latency rises only {100 * rise / abs(at_knee):.0f} % "
                        f"beyond {best_k:.3g} msg/s (need {100 * min_rise:.0f} %)", **fit)
    return HingeFit("fitted", None, **fit)


def _hinge_ssr(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Residual sum of squares of the hinge fit at every knot, by batched normal equations."""
    x0, y0 = x - x.mean(), y - y.mean()
    h = np.maximum(0, x[None, :] - knots[:, None])
    h0 = h - h.mean(axis=1, keepdims=True)
    sxx, sxy, syy = x0 @ x0, x0 @ y0, y0 @ y0
    shx, shh, shy = h0 @ x0, np.einsum("kn,kn->k", h0, h0), h0 @ y0
    det = sxx * shh - shx * shx
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (shh * sxy - shx * shy) / det
        c = (sxx * shy - shx * sxy) / det
        ssr = syy - b * sxy - c * shy  # NaN where det is 0: masked just below
    return np.where(det > 1e-12 * sxx * np.maximum(shh, 1e-300), ssr, np.inf)


def saturation_rows(frame, as_of, capacity: dict[str, int], recent_days: float = 7.0,
                    **fit_kw) -> dict[str, list]:
    """Fit every gateway of an hourly frame (gateway_id, hour_at, messages_per_s,
    latency_ms, n_connected); returns the columns of ``network_saturation``."""
    cols: dict[str, list] = {k: [] for k in (
        "gateway_id", "status", "reason", "n_hours", "saturation_msgs_per_s",
        "saturation_utilization", "latency_base_ms", "latency_slope_below",
        "latency_slope_above", "p_value", "r_squared", "max_msgs_per_s",
        "recent_p95_msgs_per_s", "is_beyond_saturation")}
    recent_since = None if as_of is None else as_of - np.timedelta64(int(recent_days * 86400), "s")
    for gw, part in frame.groupby("gateway_id", sort=True):
        x = part["messages_per_s"].to_numpy(dtype=float)
        fit = fit_hinge(x, part["latency_ms"].to_numpy(dtype=float), **fit_kw)
        hours = part["hour_at"].to_numpy()
        recent = x[hours >= recent_since] if recent_since is not None else x
        recent = recent[np.isfinite(recent)]
        p95 = float(np.quantile(recent, 0.95)) if len(recent) else None
        util = None
        if fit.status == "fitted":
            util = _knee_utilization(part, fit.knee, capacity.get(gw))
        cols["gateway_id"].append(gw)
        cols["status"].append(fit.status)
        cols["reason"].append(fit.reason)
        cols["n_hours"].append(fit.n)
        cols["saturation_msgs_per_s"].append(fit.knee if fit.status == "fitted" else None)
        cols["saturation_utilization"].append(util)
        cols["latency_base_ms"].append(fit.intercept)
        cols["latency_slope_below"].append(fit.slope_below)
        cols["latency_slope_above"].append(fit.slope_above)
        cols["p_value"].append(fit.p_value)
        cols["r_squared"].append(fit.r_squared)
        cols["max_msgs_per_s"].append(float(np.nanmax(x)) if np.isfinite(x).any() else None)
        cols["recent_p95_msgs_per_s"].append(p95)
        cols["is_beyond_saturation"].append(
            bool(fit.status == "fitted" and p95 is not None and p95 > fit.knee))
    return cols


def _knee_utilization(part, knee: float, capacity: int | None) -> float | None:
    """Attached devices / capacity that put ``knee`` msg/s on the gateway at its peak hour.

    The per-device rate at the peak hour is the largest hour-of-day mean of
    messages_per_s / n_connected.
    """
    n = part["n_connected"].to_numpy(dtype=float)
    x = part["messages_per_s"].to_numpy(dtype=float)
    ok = (n > 0) & np.isfinite(x)
    if not capacity or not ok.any():
        return None
    hod = part["hour_at"].dt.hour.to_numpy()[ok]
    ratio = x[ok] / n[ok]
    sums = np.bincount(hod, weights=ratio, minlength=24)
    counts = np.bincount(hod, minlength=24)
    peak = float(np.max(sums[counts > 0] / counts[counts > 0]))
    return knee / peak / capacity if peak > 0 else None
