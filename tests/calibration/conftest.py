"""One simulated fleet with drift, steps, faults, references, calibrations and
extra outages, analysed once for the whole folder."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulate
from tsfleet.simulate.delivery import DeliveryConfig

FLAGGED = ("drifting", "needs_recalibration", "step")


@pytest.fixture(scope="package")
def cal_fleet(tmp_path_factory):
    """250 devices x 40 days, seed 5, with more and longer outages than default."""
    path = tmp_path_factory.mktemp("cal") / "fleet.duckdb"
    fleet = Fleet(str(path))
    fleet.con.execute("set enable_progress_bar = false")
    simulate(SimConfig(n_devices=250, days=40, seed=5),
             DeliveryConfig(outages_per_30_days=3, outage_mean_hours=20)).write(fleet)
    fleet.calibration.analyze()
    yield fleet
    fleet.close()


@pytest.fixture(scope="package")
def verdicts():
    """``verdicts(fleet, where)``: sensor_drift rows joined with the simulator's truth."""
    return _verdicts


def _verdicts(fleet, where: str = "true") -> list[dict]:
    return fleet.query(
        "select d.device_id, d.verdict, d.reason, d.drift_pct, d.step_at, d.segment_start_at, "
        "d.first_detectable_at, d.expected_source, t.step_at as true_step_at, "
        "t.* exclude (device_id, step_at) "
        "from sensor_drift d join sim.sensor_truth t using (device_id) where " + where)
