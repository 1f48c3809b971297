"""The analysis recovers the simulator's injected hazard, and nothing else."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.environment import HAZARD


def _glm(fleet, outcome, factor, device_type=None):
    rows = [r for r in fleet.environment.effects(method="glm_poisson", outcome=outcome)
            if r["factor"] == factor and r["device_type"] == device_type]
    assert len(rows) == 1, (outcome, factor, device_type, rows)
    return rows[0]


def test_injected_failure_effects_are_recovered_with_the_truth_inside_the_ci(env_fleet):
    truth = env_fleet.query("select term, coefficient, device_type from sim.environment_hazard "
                            "where outcome = 'failure' and coefficient > 0 "
                            "and term <> 'age_years'")
    assert len(truth) == 3
    for t in truth:
        r = _glm(env_fleet, "failure", t["term"], t["device_type"])
        assert r["is_significant"], r
        assert r["estimate"] > 0
        assert r["ci_low"] <= t["coefficient"] <= r["ci_high"], (t, r)
        assert np.isclose(r["rate_ratio"], np.exp(r["estimate"]))


def test_the_temperature_threshold_is_found(env_fleet):
    thr = env_fleet.query("select threshold_c from environment_model where outcome = 'failure' "
                          "and term = 'temperature_excess_c'")[0]["threshold_c"]
    assert abs(thr - HAZARD.temperature_threshold_c) <= 3


def test_the_factor_without_effect_is_not_significant(env_fleet):
    # Daily swing is correlated with heat across zones, yet has no effect.
    for outcome in ("failure", "reboot"):
        r = _glm(env_fleet, outcome, "daily_swing_c")
        assert not r["is_significant"], r
        assert r["ci_low"] <= 0 <= r["ci_high"]


def test_humidity_matters_for_one_device_type_only(env_fleet):
    rows = [r for r in env_fleet.environment.effects(method="glm_poisson", outcome="failure")
            if r["factor"] == "humidity_pct"]
    significant = {r["device_type"] for r in rows if r["is_significant"]}
    assert significant == {HAZARD.humidity_type}
    assert len(rows) >= 5


def test_p_values_are_corrected_for_the_number_of_tests(env_fleet):
    rows = env_fleet.environment.effects()
    tested = [r for r in rows if r["p_value"] is not None and r["note"] and
              not r["note"].startswith("adjustment")]
    assert all(r["p_adjusted"] >= r["p_value"] for r in tested)
    assert any(r["p_adjusted"] > r["p_value"] for r in tested)
    methods = {r["method"] for r in rows}
    assert methods == {"glm_poisson", "spearman"}


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
