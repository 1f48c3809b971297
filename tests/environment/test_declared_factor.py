"""A declared environmental metric is a factor like temperature: a linear and a
threshold term found from the data, envelopes, limits and recommendations.

Known truth, generated here (not by tsfleet/simulate): 30 zones whose monitors
report dust (declared ``dust_ugm3``, is_environmental) with temperature,
humidity and vibration; failures rise 0.05 per ug/m3 of dust above 60 ug/m3 for
every device type, and nothing else has an effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsfleet import Fleet

START = pd.Timestamp("2026-03-02")
N_ZONES, N_DEVICES, DAYS = 30, 1500, 30
DUST_THRESHOLD, DUST_BETA = 60.0, 0.05
BASE_PER_YEAR = 2.0


def _generate(seed: int) -> tuple[Fleet, set[str]]:
    rng = np.random.default_rng(seed)
    n_h = DAYS * 24
    h = np.arange(n_h)
    zones = np.array([f"bay-{z:02d}" for z in range(N_ZONES)], dtype=object)
    level = rng.uniform(15, 95, N_ZONES)[:, None]
    shift = 1 + 0.3 * np.sin(2 * np.pi * (h % 24 - 8) / 24)[None, :]
    dust = np.clip(level * shift + rng.normal(0, 4, (N_ZONES, n_h)), 0, None)
    env = {"temperature_c": rng.uniform(15, 28, (N_ZONES, 1)) + rng.normal(0, 1, (N_ZONES, n_h)),
           "humidity_pct": rng.uniform(35, 65, (N_ZONES, 1)) + rng.normal(0, 3, (N_ZONES, n_h)),
           "vibration_g": (rng.uniform(0.02, 0.3, (N_ZONES, 1))
                           * rng.lognormal(0, 0.1, (N_ZONES, n_h))),
           "dust_ugm3": dust}
    zone = rng.integers(0, N_ZONES, N_DEVICES)
    dtype = rng.choice(np.array(["pump", "valve"], dtype=object), N_DEVICES)
    dev_ids = np.array([f"d{i:04d}" for i in range(N_DEVICES)], dtype=object)
    # failures: Poisson per zone-hour, then spread over the zone's devices
    rate = BASE_PER_YEAR / 8760 * np.exp(DUST_BETA * np.maximum(dust - DUST_THRESHOLD, 0))
    n_in = np.bincount(zone, minlength=N_ZONES)
    k = rng.poisson(rate * n_in[:, None])
    zi, hi = np.nonzero(k)
    zi, hi = np.repeat(zi, k[zi, hi]), np.repeat(hi, k[zi, hi])
    members = [np.flatnonzero(zone == z) for z in range(N_ZONES)]
    who = np.array([rng.choice(members[z]) for z in zi], dtype=np.int64)
    fleet = Fleet(memory=True)
    fleet.metrics.add("dust_ugm3", "ug/m3", 0, 5000, quantity="dust", is_environmental=True)
    probes = np.array([f"probe-{z:02d}" for z in range(N_ZONES)], dtype=object)
    fleet.ingest("devices", {
        "device_id": np.concatenate([dev_ids, probes]),
        "device_type": np.concatenate([dtype, np.full(N_ZONES, "probe", dtype=object)]),
        "zone": np.concatenate([zones[zone], zones]),
        "installed_at": np.full(N_DEVICES + N_ZONES, START - pd.Timedelta(days=400)),
        "is_environment_monitor": np.r_[np.zeros(N_DEVICES, bool), np.ones(N_ZONES, bool)]})
    at = (START + pd.to_timedelta(h, "h")).to_numpy()
    fleet.ingest("readings", {
        "device_id": np.tile(np.repeat(probes, n_h), len(env)),
        "observed_at": np.tile(at, N_ZONES * len(env)),
        "metric": np.repeat(np.array(list(env), dtype=object), N_ZONES * n_h),
        "value": np.concatenate([np.round(v, 2).ravel() for v in env.values()])})
    fleet.ingest("device_events", {
        "device_id": dev_ids[who], "event": np.full(len(who), "failure", dtype=object),
        "event_at": at[hi] + rng.integers(0, 3600, len(hi)).astype("timedelta64[s]")})
    dusty = set(zones[(dust > DUST_THRESHOLD + 15).mean(axis=1) > 0.5])
    return fleet, dusty


@pytest.fixture(scope="module")
def dust_fleet():
    fleet, dusty = _generate(seed=11)
    fleet.environment.analyze()
    yield fleet, dusty
    fleet.close()


def _rows(fleet, factor: str, term: str):
    return [r for r in fleet.environment.effects("glm_poisson", "failure")
            if r["factor"] == factor and r["term"] == term]


def test_the_declared_factor_gets_a_threshold_found_from_the_data(dust_fleet):
    fleet, _ = dust_fleet
    [above] = [r for r in _rows(fleet, "dust_ugm3", "above") if r["device_type"] is None]
    assert above["is_significant"]
    assert above["ci_low"] <= DUST_BETA <= above["ci_high"]
    assert above["threshold_ci_low"] <= DUST_THRESHOLD <= above["threshold_ci_high"]
    assert abs(above["threshold"] - DUST_THRESHOLD) <= 5
    assert above["unit"] == f"per ug/m3 above {above['threshold']:g}"


def test_the_factors_without_effect_stay_unremarkable(dust_fleet):
    fleet, _ = dust_fleet
    nulls = [r for r in fleet.environment.effects("glm_poisson", "failure")
             if r["factor"] in ("temperature_c", "humidity_pct", "vibration_g", "daily_swing_c")]
    assert nulls and not any(r["is_significant"] for r in nulls)


def test_the_zone_values_are_kept_per_hour(dust_fleet):
    fleet, _ = dust_fleet
    row = fleet.query("select count(*) as n, count(distinct zone) as z, min(value) as lo "
                      "from environment_zone_factor_hourly where factor = 'dust_ugm3'")[0]
    assert row["n"] == N_ZONES * DAYS * 24 and row["z"] == N_ZONES and row["lo"] >= 0


def test_envelopes_limits_and_recommendations_speak_of_dust(dust_fleet):
    fleet, dusty = dust_fleet
    bands = [r for r in fleet.environment.envelopes("all") if r["factor"] == "dust_ugm3"]
    assert len(bands) >= 3
    top = max(bands, key=lambda r: r["band_low"] if r["band_low"] is not None else -1)
    assert top["status"] == "problematic"
    [lim] = [r for r in fleet.environment.limits() if r["factor"] == "dust_ugm3"]
    assert lim["kind"] == "keep_below"
    assert lim["sentence"].startswith(f"dust above {lim['limit_value']:g} ug/m3")
    assert lim["sentence"].endswith(f"keep all device types below {lim['limit_value']:g} ug/m3")
    recs = fleet.environment.recommendations()
    assert recs and all(r["factor"] == "dust_ugm3" for r in recs)
    assert {r["zone"] for r in recs[: len(dusty)]} <= {r["zone"] for r in recs}
    assert dusty <= {r["zone"] for r in recs}
    assert recs[0]["condition"].startswith("dust above")


def test_a_metric_not_declared_environmental_is_not_a_factor():
    fleet = Fleet(memory=True)
    fleet.metrics.add("dust_ugm3", "ug/m3", 0, 5000)
    assert fleet.query("select * from metric_declarations")[0]["is_environmental"] is None
    assert not fleet.query("select * from environment_zone_factor_hourly")
