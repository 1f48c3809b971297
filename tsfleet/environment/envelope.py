"""Operating envelopes per device type: failure rates by band of each factor.

Bands are fixed, readable ranges. Each band's rate (failures per device-year)
gets an exact Poisson 95% CI; it is compared with the rest of its device type
by the conditional binomial test (given the type's failures, how many fall in
the band's share of exposure), with the Benjamini-Hochberg correction over all
bands tested (a screen of many bands: the false discovery rate is what
matters). Rows with device_type ``all`` pool every type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from tsfleet.environment.cells import round_step
from tsfleet.environment.multitest import fdr_bh

HOURS_PER_YEAR = 8760.0
#: Band edges per factor (the cells are binned so that no cell straddles an edge).
BANDS: dict[str, list[float]] = {
    "temperature_c": [-np.inf, 0, 10, 20, 25, 30, 35, 40, np.inf],
    "humidity_pct": [0, 30, 50, 70, 80, 90, np.inf],
    "vibration_g": [0, 0.1, 0.3, 0.6, 1.0, np.inf],
    "daily_swing_c": [0, 4, 8, 12, np.inf],
}
#: A declared factor's bands: a round step giving about this many bands between its
#: exposure-weighted 5% and 95% quantiles, open at both ends.
DECLARED_BANDS = 5
MIN_DEVICE_YEARS = 1.0
#: The device_type of the envelope over all types together.
ALL_TYPES = "all"


def poisson_ci(k: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) CI of a Poisson count."""
    k = np.asarray(k, dtype=float)
    lo = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return lo, hi


def bands(factor: str, cells: pd.DataFrame) -> list[float]:
    """The band edges of ``factor`` (fixed for the built-in factors, else from the data)."""
    if factor in BANDS:
        return BANDS[factor]
    x, w = cells[factor].to_numpy(float), cells["device_hours"].to_numpy(float)
    order = np.argsort(x)
    cum = np.cumsum(w[order]) / w.sum()
    lo, hi = (float(x[order][min(np.searchsorted(cum, q), len(x) - 1)]) for q in (0.05, 0.95))
    step = round_step(hi - lo, DECLARED_BANDS)
    inner = np.arange(np.ceil(lo / step) * step, hi + step / 2, step)
    return [-np.inf, *np.round(inner, 10).tolist(), np.inf]


def envelopes(cells: pd.DataFrame, factors: list[str] | None = None) -> pd.DataFrame:
    """One row per device type, factor and band with rates, CIs and status."""
    rows = []
    cells = pd.concat([cells, cells.assign(device_type=ALL_TYPES)], ignore_index=True)
    for factor in factors or list(BANDS):
        edges = bands(factor, cells)
        band = np.digitize(cells[factor].to_numpy(float), edges[1:-1])
        frame = cells.assign(band=band)
        g = frame.groupby(["device_type", "band"], as_index=False).agg(
            device_hours=("device_hours", "sum"), n_failures=("n_failures", "sum"))
        tot = g.groupby("device_type")[["device_hours", "n_failures"]].transform("sum")
        g["factor"] = factor
        g["band_low"] = [edges[b] for b in g["band"]]
        g["band_high"] = [edges[b + 1] for b in g["band"]]
        g["rest_hours"] = tot["device_hours"] - g["device_hours"]
        g["rest_failures"] = tot["n_failures"] - g["n_failures"]
        rows.append(g)
    out = pd.concat(rows, ignore_index=True)
    years = out["device_hours"] / HOURS_PER_YEAR
    lo, hi = poisson_ci(out["n_failures"].to_numpy())
    out["failures_per_year"] = out["n_failures"] / years
    out["ci_low"], out["ci_high"] = lo / years, hi / years
    rest_rate = out["rest_failures"] / (out["rest_hours"] / HOURS_PER_YEAR)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_ratio"] = np.where(rest_rate > 0, out["failures_per_year"] / rest_rate, np.nan)
    total = (out["n_failures"] + out["rest_failures"]).astype(int)
    share = out["device_hours"] / (out["device_hours"] + out["rest_hours"])
    testable = (years >= MIN_DEVICE_YEARS) & (out["rest_hours"] > 0) & (total > 0)
    p = np.full(len(out), np.nan)
    for i in np.flatnonzero(testable.to_numpy()):
        p[i] = stats.binomtest(int(out["n_failures"].iat[i]), int(total.iat[i]),
                               float(share.iat[i])).pvalue
    out["p_value"] = p
    p_adj = np.full(len(out), np.nan)
    ok = np.isfinite(p)
    if ok.any():
        p_adj[ok] = fdr_bh(p[ok])
    out["p_adjusted"] = p_adj
    status = np.where(~testable, "insufficient_data",
                      np.where((p_adj < 0.05) & (out["rate_ratio"] > 1), "problematic",
                               np.where(out["rate_ratio"] <= 1, "optimal", "normal")))
    out["status"] = status
    cols = ["device_type", "factor", "band_low", "band_high", "device_hours", "n_failures",
            "failures_per_year", "ci_low", "ci_high", "rate_ratio", "p_value", "p_adjusted",
            "status"]
    out = out[cols].replace([np.inf, -np.inf], np.nan)
    return out.sort_values(["device_type", "factor", "band_low"], na_position="first")
