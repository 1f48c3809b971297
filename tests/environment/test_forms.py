"""Every factor gets the same form: a linear and a threshold term, thresholds found
from the data with an interval, per device type where the data support it, with
multiple-testing control; the limits follow the fitted form.

Known truth on exposure cells drawn here (not the simulator's form): heat above
40 degC for every type, humidity above 80 %RH for type B only, vibration as a
straight line, and the daily swing with no effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsfleet.environment.correlation import all_effects
from tsfleet.environment.limits import limits
from tsfleet.environment.model import fit_outcome

TRUE = {"heat": (40.0, 0.08), "humid_B": (80.0, 0.06), "vibration": 0.9}


def _cells(seed: int, n: int = 9000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.uniform(5, 50, n)
    h = np.clip(rng.normal(60, 18, n), 5, 100)
    v = rng.gamma(2.0, 0.25, n)
    s = rng.uniform(1, 14, n) + 0.1 * t          # swing correlates with heat, no effect
    dtype = rng.choice(["A", "B", "C"], n)
    age = rng.uniform(0, 6, n)
    hours = rng.integers(200, 2000, n).astype(float)
    log_rate = (np.log(1.5 / 8760) + 0.1 * age
                + TRUE["heat"][1] * np.maximum(t - TRUE["heat"][0], 0)
                + TRUE["humid_B"][1] * (dtype == "B") * np.maximum(h - TRUE["humid_B"][0], 0)
                + TRUE["vibration"] * v)
    return pd.DataFrame({"device_type": dtype, "device_hours": hours, "temperature_c": t,
                         "humidity_pct": h, "vibration_g": v, "daily_swing_c": s,
                         "age_years": age, "n_failures": rng.poisson(hours * np.exp(log_rate)),
                         "n_reboots": rng.poisson(hours * 1e-4, n)})


@pytest.fixture(scope="module")
def fitted():
    fit = fit_outcome(_cells(11, n=12000), "failure")
    effects = all_effects([fit], [])
    return fit, effects, limits(fit, effects)


def test_the_fit_does_not_depend_on_the_thread_count(fitted):
    """The independent refits (each type split's test, each block's threshold profiles)
    may run side by side, each on its own copy of the model matrix: every estimate,
    interval, profile and selection step is the same as one after another."""
    fit, effects, _ = fitted
    side = fit_outcome(_cells(11, n=12000), "failure", threads=2)
    assert all_effects([side], []) == effects
    assert side.selection == fit.selection and len(fit.selection) > 1
    # every block, to the last digit (repr: NaN equals NaN), with its converged profile
    assert repr(side.blocks) == repr(fit.blocks)
    assert sum(len(b.threshold_profile) > 0 for b in fit.blocks) >= 2   # several ran


def _row(effects, factor, dtype, term):
    rows = [r for r in effects if r["factor"] == factor and r["device_type"] == dtype
            and r.get("term") == term]
    assert len(rows) == 1, (factor, dtype, term)
    return rows[0]


def test_a_threshold_on_humidity_for_one_type_is_found_with_its_interval(fitted):
    fit, effects, _ = fitted
    r = _row(effects, "humidity_pct", "B", "above")
    tau, slope = TRUE["humid_B"]
    assert abs(r["threshold"] - tau) <= 3
    assert r["threshold_ci_low"] <= tau <= r["threshold_ci_high"]
    assert r["ci_low"] <= slope <= r["ci_high"] and r["is_significant"]
    # no humidity effect for the other types
    assert not any(x["is_significant"] for x in effects if x["factor"] == "humidity_pct"
                   and x["device_type"] != "B")


def test_a_shared_threshold_and_a_straight_line_are_found(fitted):
    _, effects, _ = fitted
    heat = _row(effects, "temperature_c", None, "above")
    assert abs(heat["threshold"] - TRUE["heat"][0]) <= 3
    assert heat["ci_low"] <= TRUE["heat"][1] <= heat["ci_high"] and heat["is_significant"]
    vib = _row(effects, "vibration_g", None, "linear")
    assert vib["ci_low"] <= TRUE["vibration"] <= vib["ci_high"] and vib["is_significant"]


def test_the_factor_without_effect_is_not_significant_after_correction(fitted):
    _, effects, _ = fitted
    swing = [r for r in effects if r["factor"] == "daily_swing_c"]
    assert swing and not any(r["is_significant"] for r in swing)
    assert all(r["p_adjusted"] >= r["p_value"] for r in swing)


def test_limits_follow_the_fitted_form(fitted):
    _, _, lim = fitted
    humid = lim[(lim["factor"] == "humidity_pct")]
    assert list(humid["device_type"]) == ["B"] and list(humid["kind"]) == ["keep_below"]
    sentence = humid["sentence"].iat[0]
    tau = humid["limit_value"].iat[0]
    assert sentence.startswith(f"humidity above {tau:g} %RH")
    assert sentence.endswith(f"keep type B below {tau:g} %RH")
    vib = lim[lim["factor"] == "vibration_g"]
    assert list(vib["kind"]) == ["lower_is_better"]
    assert "daily_swing_c" not in set(lim["factor"])


def test_too_few_events_give_a_reason_not_a_fit():
    cells = _cells(3, n=50).assign(n_failures=0)
    fit = fit_outcome(cells, "failure")
    assert not fit.ok and "only 0 failures" in fit.reason
    rows = all_effects([fit], [])
    assert rows[0]["note"] == fit.reason


def test_a_rank_correlation_over_too_few_devices_is_reported_without_a_p_value():
    rows = all_effects([], [dict(outcome="failures_per_year", factor="mean_humidity_pct",
                                 n_devices=3, spearman_rho=0.9)])
    assert rows[0]["note"] == "not enough variation to rank"
    assert rows[0].get("p_value") is None and rows[0].get("is_significant") is None
