"""Environment monitors are declared, not guessed from a type name; a store without
any monitor says so once, as an error-level finding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet import Fleet

START = pd.Timestamp("2026-02-01")


def _fleet(monitor_type: str, flag: bool | None) -> Fleet:
    fleet = Fleet(memory=True)
    devs = pd.DataFrame({"device_id": [f"d{i}" for i in range(6)] + ["probe-1", "probe-2"],
                         "device_type": ["valve"] * 6 + [monitor_type] * 2,
                         "zone": ["hall"] * 3 + ["yard"] * 3 + ["hall", "yard"]})
    if flag is not None:
        devs["is_environment_monitor"] = [False] * 6 + [flag] * 2
    fleet.ingest("devices", devs)
    hours = pd.date_range(START, periods=72, freq="h")
    rows = []
    for dev, base in (("probe-1", 21.0), ("probe-2", 35.0)):
        for metric, value in (("temperature_c", base), ("humidity_pct", 50.0),
                              ("vibration_g", 0.2)):
            rows.append(pd.DataFrame({"device_id": dev, "observed_at": hours, "metric": metric,
                                      "value": value + np.sin(np.arange(72) / 3)}))
    fleet.ingest("readings", pd.concat(rows))
    return fleet


def test_a_device_declared_with_is_environment_monitor_is_a_monitor_whatever_its_type():
    fleet = _fleet("climate_probe", True)
    assert {r["device_id"] for r in fleet.query("select * from environment_monitors")} == {
        "probe-1", "probe-2"}
    fleet.environment.analyze()
    zones = {r["zone"]: r["mean_temperature_c"] for r in fleet.query(
        "select zone, mean_temperature_c from environment_device_exposure")}
    assert set(zones) == {"hall", "yard"}            # the probes are not analysed devices
    assert abs(zones["hall"] - 21) < 1 and abs(zones["yard"] - 35) < 1
    assert not fleet.query("select * from environment_findings "
                           "where finding = 'environment_no_monitors'")


def test_a_device_type_listed_in_environment_monitor_types_makes_monitors():
    fleet = _fleet("climate_probe", None)
    assert not fleet.query("select * from environment_monitors")
    fleet.con.execute("insert into environment_monitor_types values ('climate_probe', 'ours')")
    assert len(fleet.query("select * from environment_monitors")) == 2
    # ... unless the device says otherwise
    fleet.ingest("devices", [{"device_id": "probe-2", "device_type": "climate_probe",
                              "zone": "yard", "is_environment_monitor": False}])
    assert [r["device_id"] for r in fleet.query("select * from environment_monitors")] == [
        "probe-1"]


def test_no_monitor_gives_one_error_finding_and_the_summary_says_so():
    fleet = _fleet("climate_probe", None)       # a type nobody declared
    fleet.environment.analyze()
    rows = fleet.query("select * from environment_findings")
    assert [r["finding"] for r in rows] == ["environment_no_monitors"]
    assert rows[0]["severity"] == "critical"
    assert "environment_monitor_types" in rows[0]["summary"]
    assert fleet.environment.summary()[0].startswith("ERROR: no environment monitors")
