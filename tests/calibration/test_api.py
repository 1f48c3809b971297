"""Findings, schedule, registry, stability, lone sensors, incremental runs, CLI."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter, UnknownDevice

CONTRACT = ["domain", "finding", "subject_kind", "subject_id", "site", "zone", "severity",
            "value", "summary", "action", "due_at", "observed_at"]


def test_findings_view_follows_the_contract(cal_fleet):
    cols = [r["column_name"] for r in cal_fleet.query(
        "select column_name from information_schema.columns "
        "where table_name = 'calibration_findings' order by ordinal_position")]
    assert cols == CONTRACT + ["level"]
    rows = cal_fleet.query("select * from calibration_findings")
    kinds = {r["finding"] for r in rows}
    assert {"needs_recalibration", "sensor_fault"} <= kinds
    drift = {r["device_id"]: r for r in cal_fleet.query("select * from sensor_drift")}
    for r in rows:
        if r["finding"] == "needs_recalibration":
            assert r["action"] == "recalibrate" and r["level"] == "recalibrate"
            d = drift[r["subject_id"]]
            assert r["due_at"] == (d["crosses_tolerance_at"] or d["as_of"])
        if r["finding"] == "sensor_drifting":
            assert r["level"] == "watch" and r["action"] is None
        if r["finding"] == "sensor_fault":
            assert r["action"] == "inspect_device" and r["severity"] in ("warning", "critical")


def test_schedule_is_ranked_and_batched_by_site_visit(cal_fleet):
    plan = cal_fleet.calibration.schedule(horizon_days=60, visit_window_days=10)
    assert plan
    assert [p["rank"] for p in plan] == list(range(1, len(plan) + 1))
    assert all(a["due_at"] <= b["due_at"] for a, b in zip(plan, plan[1:], strict=False))
    for p in plan:
        assert p["visit_at"] <= p["due_at"]
        assert (p["due_at"] - p["visit_at"]).days <= 10
    assert len({p["visit_id"] for p in plan}) < len(plan)
    with pytest.raises(InvalidParameter):
        cal_fleet.calibration.schedule(horizon_days=0)


def test_stability_reports_effect_sizes(cal_fleet):
    rows = cal_fleet.calibration.stability()
    assert {r["factor"] for r in rows} == {"temperature_c", "humidity_pct", "vibration_g"}
    for r in rows:
        assert -1 <= r["partial_r"] <= 1 and 0 <= r["p_value"] <= 1


def test_summary_and_history(cal_fleet):
    lines = cal_fleet.calibration.summary()
    assert 1 <= len(lines) <= 6 and "sensors checked" in lines[0]
    with pytest.raises(UnknownDevice):
        cal_fleet.calibration.history("nope-1")
    dev = cal_fleet.query("select device_id from sensor_drift limit 1")[0]["device_id"]
    rows = cal_fleet.calibration.expected(dev)
    assert rows and {"expected", "expected_source"} <= set(rows[0])


def test_incremental_run_matches_the_full_run(cal_fleet):
    cols = "device_id, verdict, drift_pct, trend_p, step_p, first_detectable_at"
    some = [r["device_id"] for r in cal_fleet.query(
        "select device_id from sensor_drift order by device_id limit 12")]
    before = cal_fleet.query(f"select {cols} from sensor_drift where device_id in "
                             "(select unnest(?)) order by device_id", [some])
    cal_fleet.calibration.detect(devices=some)
    after = cal_fleet.query(f"select {cols} from sensor_drift where device_id in "
                            "(select unnest(?)) order by device_id", [some])
    def rounded(rows):
        return [{k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()}
                for r in rows]

    assert rounded(after) == rounded(before)
    with pytest.raises(InvalidParameter):
        cal_fleet.calibration.detect(devices="th-00001")
    with pytest.raises(InvalidParameter):
        cal_fleet.calibration.detect(fdr=2)


def test_a_sensor_without_peers_or_reference_says_no_expectation(fleet):
    fleet.ingest("devices", [
        {"device_id": "px-lone", "device_type": "pressure", "manufacturer": "Cirrus",
         "model": "PX-3", "site": "s1", "zone": "s1/empty", "measures": "pressure_kpa"},
        {"device_id": "px-checked", "device_type": "pressure", "manufacturer": "Cirrus",
         "model": "PX-3", "site": "s1", "zone": "s1/other", "measures": "pressure_kpa"}])
    rows = [{"device_id": d, "observed_at": f"2026-06-{1 + h // 24:02d}T{h % 24:02d}:10:00Z",
             "metric": "pressure_kpa", "value": 350 + (h % 24)}
            for d in ("px-lone", "px-checked") for h in range(24 * 10)]
    fleet.ingest("readings", rows)
    fleet.ingest("calibrations", [{"device_id": "px-checked", "calibrated_at": "2026-06-05T00:00Z",
                                   "reference_value": 350.0, "measured_value": 360.0}])
    fleet.calibration.analyze()
    got = {r["device_id"]: r for r in fleet.query("select * from sensor_drift")}
    assert got["px-lone"]["verdict"] == "no_expectation"
    assert got["px-lone"]["drift_pct"] is None
    assert got["px-checked"]["expected_source"] == "calibration_record"
    assert got["px-checked"]["verdict"] == "needs_recalibration"     # 10 kPa off at 350: 2.9%
    findings = {(r["subject_id"], r["finding"]) for r in fleet.query(
        "select * from calibration_findings")}
    assert ("px-lone", "no_expectation") in findings
    assert ("px-checked", "needs_recalibration") in findings


def test_tolerance_is_configurable_per_device_type(cal_fleet):
    with pytest.raises(InvalidParameter):
        cal_fleet.calibration.set_tolerance("pressure", 0)
    with pytest.raises(InvalidParameter):
        cal_fleet.calibration.set_tolerance("pressure", 5, watch_pct=6)
    cal_fleet.calibration.set_tolerance("pressure", 50, watch_pct=40)
    try:
        cal_fleet.calibration.detect()
        rows = cal_fleet.query("select verdict from sensor_drift where device_type = 'pressure'")
        assert not {r["verdict"] for r in rows} & {"needs_recalibration", "drifting"}
    finally:
        cal_fleet.con.execute("delete from calibration_tolerances")
        cal_fleet.calibration.analyze()


def test_cli(cal_fleet, capsys, monkeypatch):
    path = cal_fleet.path
    assert main(["calibration", "schedule", "--db", path, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    # The recalibration schedule is the calibration view of the one maintenance plan.
    assert out.startswith("as_of,workorder_id,site,visit_no,visit_due_at")
    # Read-only commands open the file read-only; in this process the store is
    # already open for writing, so let them share that configuration.
    from tsfleet.calibration import cli

    monkeypatch.setattr(cli, "open_fleet", lambda args, read_only=False: Fleet(path))
    for args in (["drift", "--verdict", "step"], ["faults"], ["stability"], ["detect"]):
        assert main(["calibration", *args, "--db", path]) == 0
    assert "sensors checked" in capsys.readouterr().out
    dev = cal_fleet.query("select device_id from calibration_checks limit 1")[0]["device_id"]
    assert main(["calibration", "history", dev, "--db", path, "--format", "json"]) == 0
    assert main(["calibration", "history", "nope", "--db", path]) == 2


def test_stability_names_exposures_it_cannot_separate():
    """Two zones: their temperature, humidity and vibration move together, so only the
    first exposure can be estimated; the others are reported as not identifiable."""
    import warnings

    import numpy as np
    import pandas as pd

    from tsfleet.calibration.stability import stability_table
    rng = np.random.default_rng(0)
    zone = np.repeat([0, 1], 20)
    df = pd.DataFrame(dict(wear_pct_per_day=0.01 + 0.02 * zone + rng.normal(0, 0.001, 40),
                           temperature_c=np.where(zone, 35.0, 20.0),
                           humidity_pct=np.where(zone, 60.0, 40.0),
                           vibration_g=np.where(zone, 0.5, 0.1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # no singular fit
        out = stability_table(df).set_index("factor")
    assert out.loc["temperature_c", "coef"] > 0 and out.loc["temperature_c", "p_value"] < 0.01
    assert out.loc[["humidity_pct", "vibration_g"], "coef"].isna().all()
    assert all("not identifiable" in out.loc[f, "summary"] for f in ("humidity_pct",
                                                                    "vibration_g"))
    # three zones, vibration independent of the other two: only humidity goes
    zone = np.repeat([0, 1, 2], 20)
    df = pd.DataFrame(dict(wear_pct_per_day=0.01 + 0.01 * zone + rng.normal(0, 0.001, 60),
                           temperature_c=20.0 + 5 * zone, humidity_pct=40.0 + 10 * zone,
                           vibration_g=np.array([0.1, 0.5, 0.2])[zone]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = stability_table(df).set_index("factor")
    assert out["coef"].isna().to_dict() == {"humidity_pct": True, "temperature_c": False,
                                            "vibration_g": False}
