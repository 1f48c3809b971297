"""Per-device stress from accumulated exposure and the predicted probability of
failure in the next 30 days.

Stress components (all from the zone environment over the window):
hours outside the device type's envelope (any factor in a ``problematic``
band), thermal cycles (days with a large swing), temperature-accelerated
ageing in the Arrhenius form, and vibration dose. ``stress_index`` (0..100)
is the mean of the four fleet percentiles. ``p_fail_30d`` is
``1 - exp(-mu)`` with ``mu`` the failures the fitted model expects in the next
30 days if the last 30 days' environment repeats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet.environment.model import Fit

COMPONENTS = ("share_hours_outside_envelope", "thermal_cycles_per_30d",
              "arrhenius_acceleration", "vibration_dose_g2h_per_day")
HORIZON_HOURS = 720
#: A fixed reference environment: the rate there only scales, and cancels out of,
#: the 30-day prediction (type and age from it, the environment from env_factor).
NEUTRAL = {"temperature_c": 20.0, "humidity_pct": 50.0, "vibration_g": 0.0,
           "daily_swing_c": 0.0}


def neutral(model: Fit) -> dict[str, float]:
    """NEUTRAL, and a declared factor at its fleet median (any fixed value would do)."""
    return {f: NEUTRAL.get(f, model.centers[f]) for f in model.factors}


def outside_envelope(zone_hours: pd.DataFrame, env: pd.DataFrame) -> pd.DataFrame:
    """Share of each zone's hours with environment that a type's envelope calls problematic."""
    bad = env[env["status"] == "problematic"]
    complete = zone_hours.dropna(subset=sorted(set(bad["factor"]) | {
        "temperature_c", "humidity_pct", "vibration_g"}))
    rows = []
    for dtype, b in bad.groupby("device_type"):
        mask = np.zeros(len(complete), bool)
        for r in b.itertuples():
            v = complete[r.factor].to_numpy(float)
            lo = -np.inf if pd.isna(r.band_low) else r.band_low
            hi = np.inf if pd.isna(r.band_high) else r.band_high
            mask |= (v >= lo) & (v < hi)
        share = pd.Series(mask, index=complete.index).groupby(complete["zone"]).mean()
        rows.append(pd.DataFrame({"zone": share.index, "device_type": dtype,
                                  "share_hours_outside_envelope": share.to_numpy()}))
    if not rows:
        return pd.DataFrame(columns=["zone", "device_type", "share_hours_outside_envelope"])
    return pd.concat(rows, ignore_index=True)


def zone_type_hazard(zone_hours: pd.DataFrame, model: Fit, types: list[str]) -> pd.DataFrame:
    """Mean environmental rate multiplier of the last 30 days, per zone and type."""
    recent = zone_hours.dropna(subset=model.factors)
    if recent.empty or not types:
        return pd.DataFrame(columns=["zone", "device_type", "env_factor"])
    cutoff = recent["hour_at"].max() - pd.Timedelta(hours=HORIZON_HOURS - 1)
    recent = recent[recent["hour_at"] >= cutoff]
    out = []
    for t in types:
        # the ratio to the neutral environment, from the log rates (the type's intercept
        # and age cancel, and nothing under- or overflows)
        rate = np.exp(model.log_rate(t, 0.0, {f: recent[f].to_numpy(float)
                                              for f in model.factors})
                      - model.log_rate(t, 0.0, neutral(model)))
        m = pd.Series(rate, index=recent.index).groupby(recent["zone"]).mean()
        out.append(pd.DataFrame({"zone": m.index, "device_type": t, "env_factor": m.to_numpy()}))
    return pd.concat(out, ignore_index=True)


def device_stress(exposure: pd.DataFrame, zone_hours: pd.DataFrame, env: pd.DataFrame,
                  fit: Fit | None, window_hours: float) -> pd.DataFrame:
    """Add the stress components, stress_index, p_fail_30d and maintenance_rank."""
    x = exposure.merge(outside_envelope(zone_hours, env), on=["zone", "device_type"], how="left")
    has_env = x["env_source"] != "none"
    x.loc[has_env, "share_hours_outside_envelope"] = (
        x.loc[has_env, "share_hours_outside_envelope"].fillna(0.0))
    pct = [x.loc[has_env, c].rank(pct=True, method="average") for c in COMPONENTS]
    x["stress_index"] = np.nan
    if has_env.any():
        x.loc[has_env, "stress_index"] = 100 * pd.concat(pct, axis=1).mean(axis=1)
    x["failures_per_30d_expected"] = np.nan
    x["p_fail_30d"] = np.nan
    if fit is not None and fit.ok:
        types = sorted(set(x["device_type"]))
        hz = zone_type_hazard(zone_hours, fit, types)
        x = x.merge(hz, on=["zone", "device_type"], how="left")
        # No environment data: the fleet's mean multiplier for the type (stated in env_source).
        typical = hz.groupby("device_type")["env_factor"].mean()
        x["env_factor"] = x["env_factor"].fillna(x["device_type"].map(typical)).fillna(
            hz["env_factor"].mean() if len(hz) else 1.0)
        age_now = x["age_years"] + (window_hours + HORIZON_HOURS / 2) / (24 * 365.25)
        # predict_rate at neutral environment gives type and age; env_factor carries the rest.
        base = fit.predict_rate(x["device_type"].to_numpy(object), age_now.to_numpy(),
                                neutral(fit))
        mu = base * x["env_factor"].to_numpy() * HORIZON_HOURS
        x["failures_per_30d_expected"] = mu
        x["p_fail_30d"] = 1 - np.exp(-mu)
        x = x.drop(columns=["env_factor"])
    order = x.sort_values(["p_fail_30d", "stress_index"], ascending=False,
                          na_position="last").index
    x["maintenance_rank"] = 0
    x.loc[order, "maintenance_rank"] = np.arange(1, len(x) + 1)
    return x
