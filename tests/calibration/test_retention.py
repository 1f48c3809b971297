"""Retention compatibility: once raw readings age out (hourly rollups kept),
detect() reads the rollup and gives the same verdicts."""

from __future__ import annotations

from tsfleet import Fleet
from tsfleet.service.retention import apply_retention
from tsfleet.simulate import SimConfig, simulate

from .test_grid import assert_grid_equals_views

FLAGGED = ("drifting", "needs_recalibration", "step")


def test_same_verdicts_after_retention(tmp_path):
    fleet = Fleet(str(tmp_path / "ret.duckdb"))
    fleet.con.execute("set enable_progress_bar = false")
    simulate(SimConfig(n_devices=120, days=30, seed=11)).write(fleet)
    fleet.calibration.detect()
    cols = "device_id, verdict, expected_source, n_hours, first_detectable_at"
    before = fleet.query(f"select {cols}, drift_pct from sensor_drift order by device_id")
    truth = {r["device_id"]: r["fault_type"] for r in fleet.query(
        "select device_id, fault_type from sim.sensor_truth")}
    # the verdicts are about the truth (so that "the same" means something)
    flagged = {r["device_id"] for r in before if r["verdict"] in FLAGGED}
    assert len(flagged | {r["device_id"] for r in before
                          if r["verdict"] == "zone_ambiguous"}) >= 5
    assert sum(truth[d] == "clean" for d in flagged) <= 1
    assert {"fault", "ok"} <= {r["verdict"] for r in before}

    done = apply_retention(fleet, raw_days=7)
    assert done.n_raw_deleted > 0.6 * (done.n_raw_deleted + fleet.query(
        "select count(*) n from readings")[0]["n"])
    fleet.calibration.detect()
    after = fleet.query(f"select {cols}, drift_pct from sensor_drift order by device_id")
    assert [{k: r[k] for k in r if k != "drift_pct"} for r in after] == \
        [{k: r[k] for k in r if k != "drift_pct"} for r in before]
    for a, b in zip(after, before, strict=True):
        assert (a["drift_pct"] is None) == (b["drift_pct"] is None)
        if a["drift_pct"] is not None:
            assert abs(a["drift_pct"] - b["drift_pct"]) < 1e-9
    # the SQL views read the rolled-up history too
    assert_grid_equals_views(fleet)
    fleet.close()
