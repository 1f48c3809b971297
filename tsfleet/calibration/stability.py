"""Stability vs environment: which exposures wear calibration fastest.

Each sensor's wear rate (absolute drift rate in % per day when its drift is
significant, 0 otherwise) is regressed on its zone's mean temperature,
humidity and vibration (OLS, HC3 errors). Effect sizes: the coefficient per
standard deviation of the exposure and the partial correlation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

FACTORS = {"temperature_c": "degC", "humidity_pct": "%RH", "vibration_g": "g"}


def stability_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df``: one row per sensor with wear_pct_per_day and the FACTORS columns."""
    df = df.dropna(subset=["wear_pct_per_day", *FACTORS])
    factors = [f for f in FACTORS if df[f].std() > 0]
    rows = []
    if len(df) > len(factors) + 2 and factors:
        X = sm.add_constant(df[factors].astype(float), has_constant="add")
        # Exposures are per zone: with few zones one can be a combination of the others
        # (not identifiable). Drop such a one (the last that the others span) and say so
        # rather than fit a singular design whose coefficients mean nothing.
        while (rank := np.linalg.matrix_rank(X.to_numpy())) < X.shape[1]:
            spanned = [f for f in factors
                       if np.linalg.matrix_rank(X.drop(columns=f).to_numpy()) == rank]
            if not spanned:
                break
            factors.remove(spanned[-1])
            X = X.drop(columns=spanned[-1])
            rows.append(dict(factor=spanned[-1], unit=FACTORS[spanned[-1]], n_sensors=len(df)))
    if len(df) > len(factors) + 2 and factors:
        fit = sm.OLS(df["wear_pct_per_day"].astype(float), X).fit(cov_type="HC3")
        for f in factors:
            t = fit.tvalues[f]
            sd = df[f].std()
            rows.append(dict(factor=f, unit=FACTORS[f], n_sensors=len(df), coef=fit.params[f],
                             coef_per_sd=fit.params[f] * sd, std_error=fit.bse[f],
                             p_value=fit.pvalues[f],
                             partial_r=t / np.sqrt(t * t + fit.df_resid)))
    out = pd.DataFrame(rows, columns=["factor", "unit", "n_sensors", "coef", "coef_per_sd",
                                      "std_error", "p_value", "partial_r"])
    out["summary"] = [
        f"+1 SD of {r.factor} changes the drift rate by {r.coef_per_sd:+.4f} %/day "
        f"(partial r {r.partial_r:+.2f}, p {r.p_value:.2g})" if pd.notna(r.coef) else
        f"{r.factor}: not identifiable (a combination of the other zones' exposures)"
        for r in out.itertuples()]
    return out
