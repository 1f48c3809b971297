"""Each slope's interval carries its threshold's uncertainty: it holds the slope's Wald
interval at every threshold of the threshold's own 95% interval (the final model refitted
there, the other thresholds at their estimates), checked here against statsmodels; and the
slopes and threshold the fleets were drawn with lie inside the reported intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from tsfleet.environment.model import fit_outcome, threshold_grid, with_events

FACTORS = ("temperature_c", "humidity_pct", "vibration_g")
#: the log rate the fleets are drawn with: (linear slope, above-threshold slope, threshold)
TRUTH = {"temperature_c": (0.0, 0.12, 30.0), "humidity_pct": (0.0, 0.0, None),
         "vibration_g": (1.0, 0.0, None)}


def _cells(seed: int, n_zones: int = 20, hours: int = 720, devices: float = 50.0) -> pd.DataFrame:
    """Zones with their own levels of three factors and hourly noise; failures Poisson with
    a log rate of 0.12 per degC above 30 degC plus 1.0 per g of vibration (humidity none),
    binned as tsfleet bins (1 degC, 5 %RH, 0.1 g)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_zones):
        t = (rng.uniform(15, 38) + rng.normal(0, 2.0, hours)
             + 3 * np.sin(np.arange(hours) * 2 * np.pi / 24))
        v = np.clip(rng.uniform(0, 0.6) + rng.normal(0, 0.05, hours), 0, None)
        h = np.clip(rng.uniform(30, 80) + rng.normal(0, 5, hours), 0, 100)
        log_rate = 0.12 * np.maximum(t - 30, 0) + 1.0 * v
        key = pd.DataFrame({"t": np.floor(t), "v": np.floor(v / 0.1), "h": np.floor(h / 5)})
        for idx in key.groupby(["t", "v", "h"]).indices.values():
            dh = len(idx) * devices
            rows.append(dict(device_type="pump", device_hours=dh, temperature_c=t[idx].mean(),
                             humidity_pct=h[idx].mean(), vibration_g=v[idx].mean(),
                             age_years=1.0, n_failures=rng.poisson(
                                 dh / 8760 * np.mean(2 * np.exp(log_rate[idx]))),
                             n_reboots=0))
    return pd.DataFrame(rows)


def _design(cells, fit, taus):
    cols = [np.ones(len(cells))]
    for f in FACTORS:
        x = cells[f].to_numpy(float)
        cols += [x - fit.centers[f], np.maximum(x - taus[f], 0.0)]
    return np.column_stack(cols)


def test_each_slope_interval_holds_the_slopes_over_its_thresholds_interval():
    checked = 0
    for seed in (200, 201, 202, 203):
        cells = _cells(seed)
        fit = fit_outcome(cells, "failure", factors=FACTORS)
        taus = {b.factor: b.threshold for b in fit.blocks}
        y = cells["n_failures"].to_numpy(float)
        offset = np.log(cells["device_hours"].to_numpy(float))
        for i, blk in enumerate(fit.blocks):
            # the injected truth: inside every reported interval of the fit
            lin, above, tau = TRUTH[blk.factor]
            assert blk.term_ci["linear"][0] <= lin <= blk.term_ci["linear"][1], (seed, blk)
            if blk.is_linear:   # a line: its slope's interval is the line-only refit's
                continue
            assert blk.term_ci["above"][0] <= above <= blk.term_ci["above"][1], (seed, blk)
            if tau is not None:
                assert blk.threshold_ci[0] <= tau <= blk.threshold_ci[1], (seed, blk)
            x = cells[blk.factor].to_numpy(float)
            grid = with_events(threshold_grid(x, cells["device_hours"].to_numpy(float)), x, y)
            lo_ci, hi_ci = blk.threshold_ci
            for t in grid[(grid >= lo_ci) & (grid <= hi_ci)]:
                res = sm.GLM(y, _design(cells, fit, {**taus, blk.factor: t}),
                             family=sm.families.Poisson(), offset=offset).fit()
                ci = res.conf_int()
                for k, term in enumerate(("linear", "above")):
                    lo, hi = blk.term_ci[term]
                    a, b = ci[1 + 2 * i + k]
                    tol = 1e-3 * (1 + abs(a) + abs(b))
                    assert lo <= a + tol and b - tol <= hi, (seed, blk.factor, term, t, (a, b),
                                                              (lo, hi))
                    checked += 1
    print(f"{checked} slope intervals checked")
    assert checked >= 20
