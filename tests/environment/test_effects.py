"""The analysis recovers the simulator's injected hazard in the fitted form (a
linear and a threshold term for every factor), and nothing else."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tsfleet.environment.model import ALPHA, FACTORS
from tsfleet.simulate.environment import HAZARD

#: The simulator's true terms in the fitted form: (factor, device type, term) -> value.
TRUTH = {("temperature_c", None, "above"): HAZARD.beta_temperature,
         ("vibration_g", None, "linear"): HAZARD.beta_vibration}


def _glm(fleet, outcome, factor, device_type=None, term="linear"):
    rows = [r for r in fleet.environment.effects(method="glm_poisson", outcome=outcome)
            if r["factor"] == factor and r["device_type"] == device_type and r["term"] == term]
    assert len(rows) == 1, (outcome, factor, device_type, term, rows)
    return rows[0]


def test_every_factor_has_a_linear_and_a_threshold_term_with_intervals(env_fleet):
    for outcome in ("failure", "reboot"):
        for factor in FACTORS:
            for term in ("linear", "above"):
                r = _glm(env_fleet, outcome, factor, None, term)
                assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
                if term == "above" or "fitted as a line" not in r["note"]:
                    assert r["threshold_ci_low"] <= r["threshold"] <= r["threshold_ci_high"]
                else:   # a line has no threshold: only its rejected hinge row names one
                    assert r["threshold"] is None and r["threshold_ci_low"] is None
                # the rate ratio per unit, where it is given (see the next test)
                assert r["rate_ratio"] is None or np.isclose(r["rate_ratio"],
                                                             np.exp(r["estimate"]))


def test_a_rate_ratio_is_given_only_where_the_data_tell_its_size(env_fleet):
    """Session 23: on the demo fleet the vibration rows read rate ratios of 52,307,563 and
    0.00 (per g RMS, a span ten times the fleet's). A term out of the model, or one whose
    95% interval spans more than x100 per unit, shows its estimate and interval but no
    ratio, and its note says why; a significant term always has its ratio."""
    rows = env_fleet.environment.effects(method="glm_poisson")
    for r in rows:
        if r["factor"] == "age_years" or r["estimate"] is None:
            continue
        wide = r["ci_high"] - r["ci_low"] > np.log(100)
        out = "this term is not in the model" in r["note"]
        assert (r["rate_ratio"] is None) == (wide or out), r
        if r["rate_ratio"] is None:
            assert "rate ratio not" in r["note"], r
        if r["is_significant"]:
            assert r["rate_ratio"] is not None and 0.01 < r["rate_ratio"] < 100, r
    assert any(r["rate_ratio"] is None for r in rows)


def test_injected_failure_effects_are_recovered_with_the_truth_inside_the_ci(env_fleet):
    for (factor, dtype, term), value in TRUTH.items():
        r = _glm(env_fleet, "failure", factor, dtype, term)
        assert r["ci_low"] <= value <= r["ci_high"], (factor, term, value, r)
        assert r["estimate"] > 0


def test_injected_failure_effects_are_significant(env_fleet):
    for (factor, dtype, term), _ in TRUTH.items():
        assert _glm(env_fleet, "failure", factor, dtype, term)["is_significant"]


def test_only_the_one_type_effect_gets_a_block_of_its_own(env_fleet):
    # Heat and vibration act alike on every type; humidity on one type only. The splits
    # enter one at a time: once humidity has its own block, no type's heat differs
    # (a one-shot Holm over all splits gave pressure a false heat block, p_adj 0.002).
    own = {(r["factor"], r["device_type"]) for r in env_fleet.environment.effects(
        method="glm_poisson", outcome="failure") if r["device_type"] is not None}
    assert own == {("humidity_pct", HAZARD.humidity_type)}


def test_a_factor_without_threshold_is_fitted_as_a_line(env_fleet):
    # The simulator's vibration acts as a straight line: its hinge's own test does not
    # support a threshold, so the model has no vibration hinge and no keep_below limit.
    above = _glm(env_fleet, "failure", "vibration_g", None, "above")
    assert "fitted as a line" in above["note"] and not above["is_significant"]
    # every line's note gives its hinge test, raw and Holm-adjusted: a line is chosen
    # because the adjusted p is at least ALPHA, and adjusting never lowers a p
    for r in env_fleet.environment.effects(method="glm_poisson"):
        if "fitted as a line" in (r["note"] or ""):
            raw, adj = map(float, re.search(r"hinge p (\S+), Holm-adjusted ([^)]+)\)",
                                            r["note"]).groups())
            assert ALPHA <= adj and raw <= adj, r["note"]
    assert "vibration_g:above" not in {r["term"] for r in env_fleet.query(
        "select term from environment_model where outcome = 'failure'")}
    assert not [lim for lim in env_fleet.environment.limits()
                if lim["factor"] == "vibration_g" and lim["kind"] == "keep_below"]
    # the heat effect has a threshold and keeps its hinge
    heat = _glm(env_fleet, "failure", "temperature_c", None, "above")
    assert "fitted as a line" not in heat["note"]


def test_the_one_type_humidity_line_is_fitted_as_a_line(env_fleet):
    # The simulator's humidity effect is a straight line for one type. Its hinge's own
    # test alone gives p 0.029 (a kink at 96 %RH fitted to noise); the form choice is
    # Holm-corrected over the fit's hinge tests, so the block stays a line.
    above = _glm(env_fleet, "failure", "humidity_pct", HAZARD.humidity_type, "above")
    assert "fitted as a line" in above["note"] and not above["is_significant"]
    line = _glm(env_fleet, "failure", "humidity_pct", HAZARD.humidity_type, "linear")
    assert line["is_significant"]
    assert line["ci_low"] <= HAZARD.beta_humidity <= line["ci_high"]


def test_the_temperature_threshold_is_found_with_an_interval(env_fleet):
    r = _glm(env_fleet, "failure", "temperature_c", None, "above")
    assert abs(r["threshold"] - HAZARD.temperature_threshold_c) <= 3
    assert r["threshold_ci_low"] <= HAZARD.temperature_threshold_c <= r["threshold_ci_high"]
    thr = env_fleet.query("select threshold from environment_model where outcome = 'failure' "
                          "and term = 'temperature_c:above'")[0]
    assert thr["threshold"] == r["threshold"]


def test_limits_follow_the_fitted_thresholds(env_fleet):
    units = {"temperature_c": "degC", "humidity_pct": "%RH", "vibration_g": "g RMS",
             "daily_swing_c": "degC of daily swing"}
    lims = env_fleet.environment.limits()
    assert lims
    for lim in lims:
        if lim["kind"] == "keep_below":
            row = _glm(env_fleet, lim["outcome"], lim["factor"], lim["device_type"], "above")
            assert lim["limit_value"] == row["threshold"] and row["is_significant"]
            assert lim["sentence"].endswith(f"below {lim['limit_value']:g} "
                                            f"{units[lim['factor']]}")
        else:
            assert lim["kind"] == "lower_is_better" and lim["limit_value"] is None


@pytest.mark.xfail(strict=True, reason="issue #18 shortfall: on this 1,000-device 30-day "
                   "fleet (202 failures, 20 zones) the daily swing, correlated with heat across "
                   "zones, is an inverted V at 8 degC, p 0.008 with Davies' bound, p_adj 0.0497, "
                   "although heat is now shared and significant (30 degC, p_adj 0.006); see docs")
def test_the_factor_without_effect_is_not_significant(env_fleet):
    # Daily swing is correlated with heat across zones, yet has no effect.
    for outcome in ("failure", "reboot"):
        for term in ("linear", "above"):
            r = _glm(env_fleet, outcome, "daily_swing_c", None, term)
            assert not r["is_significant"], r


def test_humidity_matters_for_one_device_type_only(env_fleet):
    rows = [r for r in env_fleet.environment.effects(method="glm_poisson", outcome="failure")
            if r["factor"] == "humidity_pct" and r["is_significant"]]
    assert {r["device_type"] for r in rows} == {HAZARD.humidity_type}


def test_p_values_are_corrected_for_the_number_of_tests(env_fleet):
    rows = env_fleet.environment.effects()
    tested = [r for r in rows if r["p_value"] is not None and r["note"] and
              not r["note"].startswith("adjustment")]
    assert all(r["p_adjusted"] >= r["p_value"] for r in tested)
    assert any(r["p_adjusted"] > r["p_value"] for r in tested)
    methods = {r["method"] for r in rows}
    assert methods == {"glm_poisson", "spearman"}
    # the two terms of a factor share one joint test
    glm = [r for r in tested if r["method"] == "glm_poisson"]
    by = {}
    for r in glm:
        by.setdefault((r["outcome"], r["factor"], r["device_type"]), set()).add(r["p_adjusted"])
    assert all(len(v) == 1 for v in by.values())


def test_rank_correlations_are_computed_in_sql_for_every_factor_and_outcome(env_fleet):
    rows = env_fleet.query("select * from environment_rank_correlations")
    assert {r["factor"] for r in rows} == {"mean_temperature_c", "mean_humidity_pct",
                                           "mean_vibration_g", "mean_daily_swing_c"}
    assert {"failures_per_year", "reboots_per_year", "battery_discharge_pct_per_day",
            "packet_loss_pct", "mean_rssi_dbm"} <= {r["outcome"] for r in rows}
    by = {(r["factor"], r["outcome"]): r["spearman_rho"] for r in rows}
    # Vibration raises failures.
    assert by[("mean_vibration_g", "failures_per_year")] > 0.05
    # RSSI is set by each zone's distance to its gateways (the network simulator), so
    # per-device rank correlations with the zone's climate can be significant by the
    # zone-level confounding alone: they are unadjusted and say so; every factor is
    # reported with a multiplicity-corrected p-value.
    spear = env_fleet.environment.effects(method="spearman", outcome="mean_rssi_dbm")
    assert {r["factor"] for r in spear} == {"mean_temperature_c", "mean_humidity_pct",
                                            "mean_vibration_g", "mean_daily_swing_c"}
    assert all(r["p_adjusted"] >= r["p_value"] for r in spear)


def test_envelopes_mark_the_hot_band_problematic_and_the_mild_band_not(env_fleet):
    env = env_fleet.environment.envelopes("all")
    temp = [r for r in env if r["factor"] == "temperature_c"]
    assert {r["status"] for r in temp} <= {"optimal", "normal", "problematic",
                                           "insufficient_data"}
    hot = [r for r in temp if r["band_low"] is not None and r["band_low"] >= 35]
    assert any(r["status"] == "problematic" for r in hot)
    assert {r["device_type"] for r in env_fleet.environment.envelopes()} >= {"all", "gas"}
    mild = [r for r in temp if r["band_low"] == 20]
    assert mild and all(r["status"] != "problematic" for r in mild)
    for r in env:
        if r["n_failures"] > 0:
            assert r["ci_low"] <= r["failures_per_year"] <= r["ci_high"]


def test_rank_correlations_do_not_depend_on_duckdbs_threads(tmp_path):
    # a device's discharge slope comes from sums that DuckDB's threads add in a varying
    # order (up to 1e-11 apart); on this fleet two devices' slopes are equal in exact
    # arithmetic, and with 3 threads they swapped ranks: rho moved by 7.6e-5 (and the
    # distributed run's Spearman rows disagreed with one node's under the suite's load)
    from tsfleet.simulate import SimConfig, simulated_fleet

    f = simulated_fleet(SimConfig(n_devices=500, days=20, seed=5), path=str(tmp_path / "f.duckdb"))
    f.environment.analyze()
    rho = {}
    for threads in (1, 3, 4):
        f.con.execute(f"set threads = {threads}")
        rho[threads] = {(r["factor"], r["outcome"]): r["spearman_rho"] for r in f.query(
            "select * from environment_rank_correlations where spearman_rho is not null")}
    assert rho[1] and rho[1].keys() == rho[3].keys() == rho[4].keys()
    for threads in (3, 4):
        for k, v in rho[1].items():
            assert rho[threads][k] == pytest.approx(v, abs=1e-12), (threads, k)
    f.close()
