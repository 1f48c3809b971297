"""Recommendations: the zones where bringing the significant factors to
fleet-typical levels would avoid the most failures, as rows and sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet.environment.envelope import HOURS_PER_YEAR, poisson_ci
from tsfleet.environment.model import Fit, predict_rate

ACTIONS = {
    "temperature_excess_c": "shading, ventilating or relocating",
    "humidity_pct": "sealing or relocating",
    "vibration_g": "damping the mounts of or relocating",
    "daily_swing_c": "insulating or relocating",
}
FALLBACK_THRESHOLD = {"humidity_pct": 80.0, "vibration_g": 0.3, "daily_swing_c": 8.0}
ENV_COLUMNS = ("temperature_c", "humidity_pct", "vibration_g", "daily_swing_c")
MIN_RATE_RATIO = 1.2


def _reference(zh: pd.DataFrame, factors: list[str], fit: Fit, typical: dict) -> dict:
    """The zone-hours' environment with ``factors`` brought to fleet-typical levels."""
    ref = {c: zh[c].to_numpy(float) for c in ENV_COLUMNS}
    if "temperature_excess_c" in factors:
        ref["temperature_c"] = np.minimum(ref["temperature_c"], fit.threshold_c)
    for f in ("humidity_pct", "vibration_g", "daily_swing_c"):
        if f in factors:
            ref[f] = np.minimum(ref[f], typical[f])
    return ref


def _condition(factor: str, zh: pd.DataFrame, fit: Fit, env: pd.DataFrame) -> tuple[str, float]:
    if factor == "temperature_excess_c":
        share = float((zh["temperature_c"] > fit.threshold_c).mean())
        return f"temperature above {fit.threshold_c:g} degC for {share:.0%} of hours", share
    bad = env[(env["factor"] == factor) & (env["status"] == "problematic")]["band_low"].dropna()
    thr = float(bad.min()) if len(bad) else FALLBACK_THRESHOLD[factor]
    share = float((zh[factor] >= thr).mean())
    label = {"humidity_pct": ("humidity", "%"), "vibration_g": ("vibration", " g"),
             "daily_swing_c": ("daily temperature swing", " degC")}[factor]
    return f"{label[0]} above {thr:g}{label[1]} for {share:.0%} of hours", share


def recommend(zone_hours: pd.DataFrame, exposure: pd.DataFrame, failures: pd.DataFrame,
              fit: Fit | None, significant: dict[str, set], env: pd.DataFrame) -> pd.DataFrame:
    """Ranked problem zones with evidence, expected gain and one sentence each."""
    cols = ["rank", "zone", "site", "factor", "condition", "share_hours", "n_devices",
            "n_failures", "rate_ratio", "ci_low", "ci_high", "avoidable_failures_per_year",
            "action", "sentence"]
    if fit is None or not fit.ok or not significant:
        return pd.DataFrame(columns=cols)
    zh = zone_hours.dropna(subset=list(ENV_COLUMNS))
    dev = exposure[exposure["env_source"] != "none"].merge(failures, on="device_id", how="left")
    dev["n_failures"] = dev["n_failures"].fillna(0)
    # Fleet rate per type (per device-hour with environment) -> expected failures per device.
    by_type = dev.groupby("device_type")[["n_failures", "hours_with_environment"]].sum()
    type_rate = by_type["n_failures"] / by_type["hours_with_environment"].clip(lower=1)
    dev["expected"] = dev["hours_with_environment"] * dev["device_type"].map(type_rate)
    dev["age_weight"] = np.exp(fit.coef("age_years") * dev["age_years"])
    typical = {f: float(zh.groupby("zone")[f].mean().median()) for f in FALLBACK_THRESHOLD}
    factors = sorted(significant)
    # Mean modelled rate per zone and type (age 0), actual and with the factors at
    # reference levels, computed once over all zone-hours.
    env_all = {c: zh[c].to_numpy(float) for c in ENV_COLUMNS}
    ref_all = _reference(zh, factors, fit, typical)
    ref_one = {f: _reference(zh, [f], fit, typical) for f in factors}
    # Zones as integer codes: grouping 100,000s of zone-hours by string is slow.
    zone_codes, zone_names = pd.factorize(zh["zone"])
    by_zone = {zone_names[c]: zh.iloc[idx] for c, idx in
               pd.Series(zone_codes).groupby(zone_codes).indices.items()}
    weights = dev.groupby(["zone", "device_type"])["age_weight"].sum()
    per_type = {}
    for dtype in sorted(set(dev["device_type"])):
        actual = predict_rate(fit, dtype, 0.0, *(env_all[c] for c in ENV_COLUMNS))
        parts = {"actual": actual,
                "gain_all": actual - predict_rate(fit, dtype, 0.0,
                                                  *(ref_all[c] for c in ENV_COLUMNS))}
        for f in factors:
            if f == "humidity_pct" and None not in significant[f] and dtype not in \
                    significant[f]:
                parts[f] = np.zeros(len(actual))
                continue
            parts[f] = actual - predict_rate(fit, dtype, 0.0, *(ref_one[f][c] for c in ENV_COLUMNS))
        means = pd.DataFrame(parts).groupby(zone_codes).mean()
        per_type[dtype] = means.set_axis(zone_names[means.index])
    rows = []
    for zone, zdev in dev.groupby("zone"):
        z = by_zone.get(zone)
        if z is None:
            continue
        gain = {f: 0.0 for f in factors}
        gain_all, rate_all = 0.0, 0.0
        for dtype in sorted(set(zdev["device_type"])):
            m = per_type[dtype].loc[zone]
            w = weights.loc[(zone, dtype)]
            rate_all += w * m["actual"]
            gain_all += w * m["gain_all"]
            for f in factors:
                gain[f] += w * m[f]
        if rate_all <= 0 or gain_all <= 0 or rate_all / (rate_all - gain_all) < MIN_RATE_RATIO:
            continue
        factor = max(gain, key=gain.get)
        condition, share = _condition(factor, z, fit, env)
        affected = zdev
        if factor == "humidity_pct" and None not in significant[factor]:
            affected = zdev[zdev["device_type"].isin(significant[factor])]
        obs, exp_ = int(affected["n_failures"].sum()), float(affected["expected"].sum())
        lo, hi = poisson_ci(np.array([obs]))
        rr, rr_lo, rr_hi = (obs / exp_, lo[0] / exp_, hi[0] / exp_) if exp_ > 0 else (np.nan,) * 3
        avoid = gain_all * HOURS_PER_YEAR
        kinds = ("" if len(affected) == len(zdev) else
                 " " + ", ".join(sorted(set(affected["device_type"]))))
        sentence = (f"Zone {zone} ({zdev['site'].iat[0]}): {condition}; devices there fail "
                    f"{rr:.1f}x (95% CI {rr_lo:.1f}-{rr_hi:.1f}) the fleet rate; "
                    f"{ACTIONS[factor]} the {len(affected)}{kinds} devices there would avoid "
                    f"about {avoid:.1f} failures a year.")
        rows.append(dict(zone=zone, site=zdev["site"].iat[0], factor=factor, condition=condition,
                         share_hours=share, n_devices=len(affected), n_failures=obs,
                         rate_ratio=rr, ci_low=rr_lo, ci_high=rr_hi,
                         avoidable_failures_per_year=avoid, action=ACTIONS[factor],
                         sentence=sentence))
    out = pd.DataFrame(rows, columns=[c for c in cols if c != "rank"])
    out = out.sort_values("avoidable_failures_per_year", ascending=False, ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out
