"""Recommendations: the zones whose environment raises their devices' failure rate the
most, as rows and sentences.

A zone's ``model_rate_ratio`` is the fitted rate of its devices at the zone's hours over
the rate with the significant factors brought within the fitted limits (or, for an
effect without a threshold, to fleet-typical levels): how many times the environment
multiplies the rate there. Zones are ranked by it. A count of avoidable failures also
grows with a zone's size, so ranking by it puts a large zone of mild conditions ahead of
a small zone of harsh ones (issue #18: on the independent generator that ranking found
0.67 of the true problem zones, this one 0.88); the count is kept as a column for
planning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet.environment.envelope import HOURS_PER_YEAR, poisson_ci
from tsfleet.environment.limits import limit_for
from tsfleet.environment.model import Fit

ACTIONS = {
    "temperature_c": "shading, ventilating or relocating",
    "humidity_pct": "sealing or relocating",
    "vibration_g": "damping the mounts of or relocating",
    "daily_swing_c": "insulating or relocating",
}
MIN_RATE_RATIO = 1.2
COLUMNS = ["rank", "zone", "site", "factor", "condition", "share_hours", "n_devices",
           "n_failures", "rate_ratio", "ci_low", "ci_high", "avoidable_failures_per_year",
           "action", "sentence", "model_rate_ratio"]


def _reference(env: dict, lims: dict, typical: dict) -> dict:
    """The zone-hours' environment with the factors of ``lims`` brought within limits."""
    ref = dict(env)
    for f, lim in lims.items():
        cap = lim["limit_value"] if lim["kind"] == "keep_below" else typical[f]
        ref[f] = np.minimum(env[f], cap)
    return ref


def recommend(zone_hours: pd.DataFrame, exposure: pd.DataFrame, failures: pd.DataFrame,
              model: Fit | None, lim: pd.DataFrame) -> pd.DataFrame:
    """Ranked problem zones with evidence, expected gain and one sentence each."""
    if model is None or not model.ok or lim.empty:
        return pd.DataFrame(columns=COLUMNS)
    factors = [f for f in model.factors if f in set(lim["factor"])]
    zh = zone_hours.dropna(subset=model.factors)
    dev = exposure[exposure["env_source"] != "none"].merge(failures, on="device_id", how="left")
    dev["n_failures"] = dev["n_failures"].fillna(0)
    # Fleet rate per type (per device-hour with environment) -> expected failures per device.
    by_type = dev.groupby("device_type")[["n_failures", "hours_with_environment"]].sum()
    type_rate = by_type["n_failures"] / by_type["hours_with_environment"].clip(lower=1)
    dev["expected"] = dev["hours_with_environment"] * dev["device_type"].map(type_rate)
    dev["age_weight"] = np.exp(model.coef("age_years") * dev["age_years"])
    typical = {f: float(zh.groupby("zone")[f].mean().median()) for f in factors}
    env_all = {c: zh[c].to_numpy(float) for c in model.factors}
    # Zones as integer codes: grouping 100,000s of zone-hours by string is slow.
    zone_codes, zone_names = pd.factorize(zh["zone"])
    by_zone = {zone_names[c]: zh.iloc[idx] for c, idx in
               pd.Series(zone_codes).groupby(zone_codes).indices.items()}
    weights = dev.groupby(["zone", "device_type"])["age_weight"].sum()
    per_type, applies = {}, {}
    for dtype in sorted(set(dev["device_type"])):
        lims = {f: lm for f in factors if (lm := limit_for(lim, model, dtype, f)) is not None}
        applies[dtype] = lims
        actual = model.predict_rate(dtype, 0.0, env_all)
        parts = {"actual": actual, "gain_all": actual - model.predict_rate(
            dtype, 0.0, _reference(env_all, lims, typical))}
        for f in factors:
            parts[f] = (actual - model.predict_rate(dtype, 0.0, _reference(
                env_all, {f: lims[f]}, typical)) if f in lims else np.zeros(len(actual)))
        means = pd.DataFrame(parts).groupby(zone_codes).mean()
        per_type[dtype] = means.set_axis(zone_names[means.index])
    rows = []
    for zone, zdev in dev.groupby("zone"):
        z = by_zone.get(zone)
        if z is None:
            continue
        gain = {f: 0.0 for f in factors}
        best_type = {f: (0.0, None) for f in factors}
        gain_all, rate_all = 0.0, 0.0
        for dtype in sorted(set(zdev["device_type"])):
            m = per_type[dtype].loc[zone]
            w = weights.loc[(zone, dtype)]
            rate_all += w * m["actual"]
            gain_all += w * m["gain_all"]
            for f in factors:
                gain[f] += w * m[f]
                if w * m[f] > best_type[f][0]:
                    best_type[f] = (w * m[f], dtype)
        if rate_all <= 0 or gain_all <= 0:
            continue
        model_ratio = rate_all / (rate_all - gain_all)
        if model_ratio < MIN_RATE_RATIO:
            continue
        factor = max(gain, key=gain.get)
        if best_type[factor][1] is None:
            continue
        lim_row = applies[best_type[factor][1]][factor]
        cap = lim_row["limit_value"] if lim_row["kind"] == "keep_below" else typical[factor]
        share = float((z[factor] > cap).mean())
        # the words of environment_limits: its threshold, or no threshold and the median zone
        level = (f"{cap:.3g} {model.unit(factor)}" if lim_row["kind"] == "keep_below" else
                 f"the median zone's {cap:.3g} {model.unit(factor)} (no threshold found: "
                 "lower is better)")
        condition = f"{model.label(factor)} above {level} for {share:.0%} of hours"
        affected = zdev[zdev["device_type"].map(lambda t, f=factor: f in applies[t])]
        obs, exp_ = int(affected["n_failures"].sum()), float(affected["expected"].sum())
        lo, hi = poisson_ci(np.array([obs]))
        rr, rr_lo, rr_hi = (obs / exp_, lo[0] / exp_, hi[0] / exp_) if exp_ > 0 else (np.nan,) * 3
        avoid = gain_all * HOURS_PER_YEAR
        kinds = ("" if len(affected) == len(zdev) else
                 " " + ", ".join(sorted(set(affected["device_type"]))))
        action = ACTIONS.get(factor, "changing the environment of")
        sentence = (f"Zone {zone} ({zdev['site'].iat[0]}): {condition}; devices there fail "
                    f"{rr:.1f}x (95% CI {rr_lo:.1f}-{rr_hi:.1f}) the fleet rate, and the model "
                    f"attributes {model_ratio:.1f}x to these conditions; "
                    f"{action} the {len(affected)}{kinds} devices there would avoid "
                    f"about {_failures(avoid)} a year.")
        rows.append(dict(zone=zone, site=zdev["site"].iat[0], factor=factor, condition=condition,
                         share_hours=share, n_devices=len(affected), n_failures=obs,
                         rate_ratio=rr, ci_low=rr_lo, ci_high=rr_hi,
                         avoidable_failures_per_year=avoid, action=action,
                         sentence=sentence, model_rate_ratio=model_ratio))
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "rank"])
    out = out.sort_values(["model_rate_ratio", "avoidable_failures_per_year", "zone"],
                          ascending=[False, False, True], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _failures(n: float) -> str:
    """An expected count of failures, rounded to what it can mean (a whole number; one
    decimal only below 10)."""
    if not np.isfinite(n):
        return "an unknown number of failures"
    text = f"{n:.0f}" if n >= 9.95 else f"{n:.1f}"
    return f"{text} failure{'' if text == '1' else 's'}"
