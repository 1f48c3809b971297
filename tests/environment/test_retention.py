"""The analysis reads hourly history: the same verdicts once raw readings age out."""

from __future__ import annotations

import numpy as np
import pytest

from tsfleet.service.retention import apply_retention
from tsfleet.simulate import SimConfig, simulated_fleet

#: Smaller than the shared fleet, large enough for every injected effect to show.
CONFIG = SimConfig(n_devices=600, days=30, seed=5)


def _verdicts(fleet) -> dict:
    q = fleet.query
    return {
        "effects": q("select method, outcome, factor, device_type, term, is_significant, "
                     "sign(estimate) as sign from environment_effects order by all"),
        "estimates": q("select method, outcome, factor, device_type, term, estimate "
                       "from environment_effects where method = 'glm_poisson' order by all"),
        "threshold": q("select outcome, factor, device_type, threshold from environment_model "
                       "where term like '%:above' order by all"),
        "zones": [r["zone"] for r in fleet.environment.recommendations()],
        "envelopes": q("select device_type, factor, band_low, status from environment_envelopes "
                       "order by all"),
        "faults": q("select device_id, metric, fault from environment_monitor_faults "
                    "order by all"),
        "gaps": q("select zone, metric, gap_from, hours, is_filled from environment_gaps "
                  "order by all"),
        "sources": q("select env_source, count(*) as n from environment_device_exposure "
                     "group by all order by all"),
        "findings": q("select finding, subject_id from environment_findings order by all"),
        # a device's own hourly readings (ASOF-aligned), from raw data or the rollup
        "own": [(r["hour_at"], r["is_own"], round(r["temperature_c"] or 0, 9))
                for r in fleet.environment.device_environment(q(
                    "select min(device_id) as d from devices "
                    "where device_type = 'temp_humidity'")[0]["d"])],
    }


@pytest.fixture(scope="module")
def before_and_after():
    fleet = simulated_fleet(CONFIG)
    fleet.environment.analyze()
    before = _verdicts(fleet)
    res = apply_retention(fleet, raw_days=7)
    n_left = fleet.query("select count(*) as n from readings")[0]["n"]
    fleet.environment.analyze()
    after = _verdicts(fleet)
    fleet.close()
    return before, after, res, n_left


def test_most_raw_readings_are_gone(before_and_after):
    _, _, res, n_left = before_and_after
    assert res.n_raw_deleted > 2 * n_left  # 23 of 30 days now only in the hourly rollup


def test_the_same_verdicts_after_retention(before_and_after):
    before, after, _, _ = before_and_after
    # The injected effects are found both times (the run is meaningful) ...
    sig = {(r["outcome"], r["factor"], r["device_type"]) for r in before["effects"]
           if r["method"] == "glm_poisson" and r["is_significant"]}
    assert ("failure", "temperature_c", None) in sig
    assert before["zones"]
    assert sum(is_own for _, is_own, _ in before["own"]) > 0.8 * len(before["own"])
    # ... and every verdict is unchanged once the raw readings aged out.
    for key in ("effects", "threshold", "zones", "envelopes", "faults", "gaps", "sources",
                "findings", "own"):
        assert after[key] == before[key], key
    b = np.array([r["estimate"] for r in before["estimates"]], dtype=float)
    a = np.array([r["estimate"] for r in after["estimates"]], dtype=float)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
