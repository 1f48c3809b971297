"""The threshold's interval covers the true threshold when zones differ beyond the model.

The likelihood-ratio interval of a threshold assumes independent Poisson counts given
the modelled environment. On a real fleet a zone's devices share more than the
monitored environment (a zone effect), so a threshold that a few dozen zones pin down
moves from zone to zone more than the likelihood says; the interval's cut-off is
inflated by the zone-clustered (sandwich) variance of the threshold over its model
variance (model.threshold_inflation).

Known truth, drawn here: 40 zones, each with its own temperature level and hourly
noise, failures Poisson with a hinge of 0.12 per degC above 30 degC and a lognormal
zone effect (sd 0.5) the model does not have; about 900 failures a fleet. Over 60
fleets (seeds 100-159) the interval of main e3f42f2 (the fine sweep's likelihoods, plain
chi-square cut-off) covered 30 degC in 46 (77%); the converged profile over the whole grid
with the plain cut-off in 50 (83%); with the zone-clustered cut-off in 56 (93%). Without
a zone effect the last two cover 57 of 60 (95%): the inflation is about 1 when the model
is right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsfleet.environment import model

N_ZONES, HOURS, DEVICES, TRUE_THRESHOLD = 40, 24 * 60, 30, 30.0
SEEDS = range(100, 160)


def _cells(seed: int, zone_sd: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposure cells (1 degC bins pooling the zones) and each cell's zone parts."""
    rng = np.random.default_rng(seed)
    temp = rng.uniform(15, 40, N_ZONES)[:, None] + rng.normal(0, 3, (N_ZONES, HOURS))
    zone_effect = rng.normal(0, zone_sd, N_ZONES)[:, None]
    rate = 3e-4 * np.exp(0.12 * np.maximum(temp - TRUE_THRESHOLD, 0) + zone_effect)
    hourly = pd.DataFrame({"zone": np.repeat(np.arange(N_ZONES), HOURS),
                           "bin": np.floor(temp).astype(int).ravel(), "t": temp.ravel(),
                           "y": rng.poisson(rate * DEVICES).ravel()})
    parts = hourly.groupby(["bin", "zone"], as_index=False).agg(
        h=("t", "size"), st=("t", "sum"), y=("y", "sum"))
    pooled = parts.groupby("bin", as_index=False)[["h", "st", "y"]].sum()
    cells = pd.DataFrame({"device_type": "pump", "device_hours": pooled["h"] * DEVICES,
                          "temperature_c": pooled["st"] / pooled["h"], "age_years": 1.0,
                          "n_failures": pooled["y"], "n_reboots": 0})
    row = pd.Series(np.arange(len(pooled)), index=pooled["bin"])
    zone_parts = pd.DataFrame({"cell": row[parts["bin"]].to_numpy(), "zone": parts["zone"],
                               "device_hours": parts["h"] * DEVICES,
                               "n_failures": parts["y"], "n_reboots": 0.0})
    return cells, zone_parts


def _covered(zone_sd: float) -> int:
    n = 0
    for seed in SEEDS:
        cells, parts = _cells(seed, zone_sd)
        blk = model.fit_outcome(cells, "failure", factors=("temperature_c",),
                                zone_parts=parts).blocks[0]
        n += blk.threshold_ci[0] <= TRUE_THRESHOLD <= blk.threshold_ci[1]
    return n


def test_the_threshold_interval_covers_the_truth_with_a_zone_effect():
    # 95% nominal; 60 fleets: 56 covered; the plain likelihood cut-off 50, main's 46
    assert _covered(zone_sd=0.5) >= 0.9 * len(SEEDS)


@pytest.mark.parametrize("zone_sd", [0.0])
def test_the_inflation_keeps_the_interval_when_the_model_is_right(zone_sd):
    # no zone effect: the interval is the likelihood's, covering about 95%
    assert _covered(zone_sd) >= 0.9 * len(SEEDS)


def test_every_cell_is_its_own_cluster_without_zone_parts():
    cells, _ = _cells(100, 0.5)
    blk = model.fit_outcome(cells, "failure", factors=("temperature_c",)).blocks[0]
    assert blk.threshold_inflation >= 1.0
    assert blk.threshold_ci[0] <= blk.threshold <= blk.threshold_ci[1]


def test_the_zone_parts_add_up_to_the_cells(env_fleet):
    cells, parts = env_fleet.environment.cells, env_fleet.environment.zone_parts
    sums = parts.groupby("cell")[["device_hours", "n_failures", "n_reboots"]].sum()
    assert len(sums) == len(cells) and parts["zone"].nunique() > 10
    for col in ("device_hours", "n_failures", "n_reboots"):
        np.testing.assert_allclose(sums[col].to_numpy(), cells[col].to_numpy(float),
                                   rtol=1e-9)


def test_the_inflation_follows_the_zone_effect():
    # the cut-off on main is max(Hansen's 7.35, 3.84 x inflation): with the 7.35 floor the
    # coverage tests above pass without the inflation, so this one pins it down. Seeds
    # 100-111: median inflation 1.06 without a zone effect, 2.20 with one (sd 0.5)
    def median_k(zone_sd: float) -> float:
        ks = []
        for seed in range(100, 112):
            cells, parts = _cells(seed, zone_sd)
            ks.append(model.fit_outcome(cells, "failure", factors=("temperature_c",),
                                        zone_parts=parts).blocks[0].threshold_inflation)
        return float(np.median(ks))
    assert median_k(0.0) < 1.3 < 1.8 < median_k(0.5)


def test_a_large_inflation_widens_the_interval_past_hansens_cut(monkeypatch):
    cells, parts = _cells(106, 0.5)   # inflation 5.1: 3.84 x 5.1 = 19.6 > 7.35
    wide = model.fit_outcome(cells, "failure", factors=("temperature_c",),
                             zone_parts=parts).blocks[0]
    monkeypatch.setattr(model, "threshold_inflation", lambda *a, **k: 1.0)
    plain = model.fit_outcome(cells, "failure", factors=("temperature_c",),
                              zone_parts=parts).blocks[0]
    assert wide.threshold_inflation > 4
    assert (wide.threshold_ci[1] - wide.threshold_ci[0]
            > plain.threshold_ci[1] - plain.threshold_ci[0])
