"""A device's ``measures`` against the metric catalog (session 24): the device lands as
a device with an unknown chemistry does, and the calibration findings say what is
wrong (a typo with the metric meant, an alias with its canonical metric, a metric
not declared yet with the readings waiting for it) until it is put right."""

from __future__ import annotations

from tsfleet import Fleet

DEVICES = [
    {"device_id": "typo", "measures": "temprature_c", "site": "s1", "zone": "z1"},
    {"device_id": "case", "measures": " Temperature_C ", "site": "s1", "zone": "z1"},
    {"device_id": "alias", "measures": "temperature_f", "site": "s1", "zone": "z1"},
    {"device_id": "flow", "measures": "flow_lpm", "site": "s1", "zone": "z2"},
    {"device_id": "hum", "measures": "humidity_pct", "site": "s1", "zone": "z1"},
    {"device_id": "none", "site": "s1", "zone": "z1"},
]


def _findings(fleet: Fleet) -> dict[str, dict]:
    return {r["subject_id"]: r for r in fleet.query(
        "select subject_id, finding, severity, summary, action from calibration_findings "
        "where finding = 'unknown_metric'")}


def test_an_unknown_measured_metric_lands_the_device_and_raises_a_finding():
    fleet = Fleet(memory=True)
    report = fleet.ingest("devices", DEVICES)
    assert (report.n_accepted, report.n_quarantined) == (6, 0)
    assert {r["device_id"]: r["measures"] for r in fleet.query(
        "select device_id, measures from devices")} == {
        "typo": "temprature_c", "case": "temperature_c", "alias": "temperature_f",
        "flow": "flow_lpm", "hum": "humidity_pct", "none": None}
    readings = [{"device_id": "flow", "observed_at": f"2026-05-01T{h:02d}:00Z",
                 "metric": "flow_lpm", "value": 100 + h} for h in range(5)]
    assert fleet.ingest("readings", readings).quarantined_by_reason == {"unknown_metric": 5}
    found = _findings(fleet)
    assert sorted(found) == ["alias", "flow", "typo"]
    assert {(r["severity"], r["action"]) for r in found.values()} == {
        ("warning", "correct_measures"), ("warning", "declare_metric")}
    assert found["typo"]["summary"] == (
        "typo measures temprature_c, which is not in metric_catalog (did you mean "
        "temperature_c?): its calibration cannot be judged; correct measures, or declare "
        "the metric (ingest kind metrics or fleet.metrics.add)")
    assert found["typo"]["action"] == "correct_measures"
    assert found["alias"]["summary"] == (
        "alias measures temperature_f, which is not in metric_catalog (an alias of "
        "temperature_c: its readings are stored as temperature_c): its calibration cannot be "
        "judged; set measures to temperature_c")
    assert found["flow"]["summary"] == (
        "flow measures flow_lpm, which is not in metric_catalog: its calibration cannot be "
        "judged; 5 of its readings of flow_lpm wait in quarantine (unknown_metric): declare "
        "the metric (ingest kind metrics or fleet.metrics.add) to re-ingest them")
    assert found["flow"]["action"] == "declare_metric"
    # put right: the findings close
    fleet.metrics.add("flow_lpm", "l/min", 0, 500)
    fleet.ingest("devices", [{"device_id": "typo", "measures": "temperature_c"},
                             {"device_id": "alias", "measures": "TEMPERATURE_C"}])
    assert _findings(fleet) == {}
    assert fleet.query("select count(*) as n from readings where device_id = 'flow'")[0]["n"] == 5
    fleet.close()


def test_after_detect_a_sensor_of_an_unknown_metric_has_one_finding_not_two():
    """detect() judges such a sensor no_expectation for the same cause: the finding of
    the cause is the one kept."""
    fleet = Fleet(memory=True)
    fleet.ingest("devices", [dict(d, device_type="th") for d in DEVICES[:1]] + [
        {"device_id": f"peer-{k}", "measures": "temperature_c", "device_type": "th",
         "site": "s1", "zone": "z1"} for k in range(3)])
    fleet.ingest("readings", [{"device_id": f"peer-{k}",
                               "observed_at": f"2026-05-{1 + h // 24:02d}T{h % 24:02d}:00Z",
                               "metric": "temperature_c", "value": 20 + 0.01 * k}
                              for k in range(3) for h in range(24 * 10)])
    fleet.calibration.detect()
    assert fleet.query("select verdict from sensor_drift where device_id = 'typo'") == [
        {"verdict": "no_expectation"}]
    assert [r["finding"] for r in fleet.query(
        "select finding from calibration_findings where subject_id = 'typo'")] == [
        "unknown_metric"]
    fleet.close()
