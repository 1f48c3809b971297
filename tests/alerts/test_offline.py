"""Offline detection that understands schedules: k missed intervals of the device's own
interval (profile, or learned from its history), sleepy devices, backfill."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from tests.alerts.alerting_helpers import T0
from tsfleet import Fleet
from tsfleet.alerts import parse_rules
from tsfleet.simulate import SimConfig, simulate
from tsfleet.simulate.delivery import DeliveryConfig

#: The built-in pack, with DeviceOffline resolving as soon as the device is back.
PACK = parse_rules("""
include_builtin = true
[[rule]]
name = "DeviceOffline"
source = "alerts_findings"
condition = "finding = 'device_offline'"
keep_firing_for = "0s"
""")
N_DAYS = 14


def readings_table(sim, rows: np.ndarray) -> pa.Table:
    """Delivered rows ``rows`` as a readings table (as the simulator ingests them)."""
    dl, d = sim.delivered, sim.skeleton.devices
    dev = dl.device_idx[rows]
    seconds = dl.hour_idx[rows].astype(np.int64) * 3600 + d["phase_s"][dev]
    t0 = sim.skeleton.hours[0].astype("datetime64[us]")
    return pa.table({
        "device_id": pa.array(d["device_id"][dev].tolist()),
        "observed_at": pa.array(t0 + seconds.astype("timedelta64[s]")),
        "metric": pa.array([dl.metrics[m] for m in dl.metric[rows]]),
        "value": pa.array(dl.value[rows]),
    })


@pytest.fixture(scope="module")
def offline_sim():
    """A fleet of 120 devices (hourly and daily) where some devices went silent at the end.

    Truth: ``silent`` (ids of devices whose last hours/days were withheld), ``sleepy``
    (daily devices), ``held`` (the withheld rows, for backfill).
    """
    sim = simulate(SimConfig(n_devices=120, days=N_DAYS, seed=21),
                   delivery=DeliveryConfig(outages_per_30_days=0))
    d = sim.skeleton.devices
    n_hours = sim.skeleton.n_hours
    hourly = np.flatnonzero(d["reporting_interval_s"] == 3600)
    sleepy = np.flatnonzero(d["reporting_interval_s"] == 86400)
    assert len(sleepy) >= 4
    silent_hourly = hourly[:4]                           # silent for the last 10 hours
    silent_sleepy = sleepy[:1]                           # silent for the last 4 days
    dl = sim.delivered
    cut = np.full(sim.skeleton.n_devices, n_hours)
    cut[silent_hourly] = n_hours - 10
    cut[silent_sleepy] = n_hours - 4 * 24
    held = dl.hour_idx >= cut[dl.device_idx]
    # The sleepy devices do not report their own interval: it must be learned.
    interval = dl.metrics.index("reporting_interval_s") if "reporting_interval_s" in dl.metrics \
        else -1
    keep = ~held & ~((dl.metric == interval) & np.isin(dl.device_idx, sleepy))
    # Monitors the environment generator kills are left out of the readings entirely:
    # registered and installed, they never report, which is offline too.
    faults = sim.output.truth["environment_monitor_faults"].to_pylist()
    dead = {f["device_id"] for f in faults if f["fault"] == "dead"}
    keep &= ~np.isin(dl.device_idx, np.flatnonzero(np.isin(d["device_id"], list(dead))))
    sim.held = readings_table(sim, np.flatnonzero(held))
    sim.delivered = replace(dl, metric=dl.metric[keep], device_idx=dl.device_idx[keep],
                            hour_idx=dl.hour_idx[keep], value=dl.value[keep],
                            chunk=dl.chunk[keep])
    # Profiles: one daily device claims to be hourly, one has no profile at all.
    d["reporting_interval_s"] = d["reporting_interval_s"].copy()
    d["reporting_interval_s"][sleepy[1]] = 3600
    d["reporting_interval_s"][sleepy[2]] = np.nan
    fleet = Fleet(memory=True)
    sim.write(fleet)
    sim.silent = set(d["device_id"][np.r_[silent_hourly, silent_sleepy]])
    sim.sleepy = set(d["device_id"][sleepy])
    sim.never = dead
    yield fleet, sim
    fleet.close()


def offline_alerts(fleet) -> list[str]:
    return sorted(a["subject_id"] for a in fleet.alerts.list_alerts(["firing"],
                                                                   rule="DeviceOffline"))


def test_exactly_the_silent_devices_are_offline_and_sleepy_devices_are_not(offline_sim):
    fleet, sim = offline_sim
    view = fleet.query("select device_id, never_reported from device_offline where is_offline")
    assert len(sim.never) >= 1
    assert {r["device_id"] for r in view} == sim.silent | sim.never
    assert {r["device_id"] for r in view if r["never_reported"]} == sim.never
    offline = sorted(sim.silent | sim.never)
    for _ in range(3):                                    # repeated evaluations: no duplicates
        ev = fleet.alerts.evaluate(PACK)
        assert offline_alerts(fleet) == offline
    n_rows = fleet.query("select count(*) as n from alerts where rule = 'DeviceOffline'")[0]["n"]
    assert n_rows == len(offline)                         # one alert per silent device, ever
    assert ev.states["firing"] >= len(offline)            # other domains' rules fire too
    (never,) = fleet.query("select summary from alerts_findings where subject_id = ?",
                           [sorted(sim.never)[0]])
    assert "never reported" in never["summary"]
    learned = fleet.query("select device_id, interval_source, expected_interval_s "
                          "from device_offline where device_id in (select unnest(?))",
                          [sorted(sim.sleepy)])
    for row in learned:                                   # a daily device is judged daily,
        assert row["expected_interval_s"] >= 86400 * 0.95  # whatever its profile says
    assert {r["interval_source"] for r in learned} == {"learned+profile", "learned"}


def test_a_backfilled_batch_closes_the_gap(offline_sim):
    fleet, sim = offline_sim
    fleet.alerts.evaluate(PACK)
    back = sorted(sim.silent)[0]
    held = sim.held.filter(pa.compute.equal(sim.held["device_id"], back))
    assert held.num_rows > 0
    fleet.ingest("readings", held)
    fleet.alerts.evaluate(PACK)
    assert back not in offline_alerts(fleet)
    assert offline_alerts(fleet) == sorted((sim.silent | sim.never) - {back})
    (alert,) = fleet.alerts.list_alerts(["resolved"], rule="DeviceOffline")
    assert alert["subject_id"] == back


def test_offline_clock_and_k_follow_the_schedule(fleet):
    """An hourly and a daily device; the clock is ``at`` when given."""
    rows = [{"device_id": "h-1", "observed_at": T0 + timedelta(hours=i), "metric": "rssi_dbm",
             "value": -80.0} for i in range(48)]
    rows += [{"device_id": "d-1", "observed_at": T0 + timedelta(days=i), "metric": "rssi_dbm",
              "value": -80.0} for i in range(2)]             # too few to learn from
    fleet.ingest("readings", rows)
    fleet.ingest("devices", [{"device_id": "d-1", "device_type": "t", "manufacturer": "m",
                              "model": "x", "site": "s", "zone": "z",
                              "reporting_interval_s": 86400}])
    last = T0 + timedelta(hours=47)

    def offline(at: datetime, k: float = 3.0) -> set[str]:
        fleet.alerts.evaluate(PACK, at=at, offline_k=k)
        return set(offline_alerts(fleet))

    assert offline(last + timedelta(hours=2)) == set()
    assert offline(last + timedelta(hours=4)) == {"h-1"}       # 3 hourly intervals missed
    assert offline(last + timedelta(hours=5), k=6) == set()
    rows = fleet.query("select device_id, interval_source from device_offline order by 1")
    assert rows == [{"device_id": "d-1", "interval_source": "profile"},
                    {"device_id": "h-1", "interval_source": "learned"}]
    assert offline(T0 + timedelta(days=1, hours=70)) == {"h-1"}
    assert offline(T0 + timedelta(days=1, hours=73)) == {"h-1", "d-1"}
    (d1,) = fleet.alerts.list_alerts(rule="DeviceOffline", site="s")
    assert d1["severity"] == "warning"
    assert offline(T0 + timedelta(days=14)) == {"h-1", "d-1"}
    (d1,) = fleet.alerts.list_alerts(rule="DeviceOffline", site="s")
    assert d1["severity"] == "critical"
    orders = fleet.alerts.plan_work_orders(at=T0 + timedelta(days=14))
    assert [(o["site"], [i["action"] for i in o["items"]]) for o in orders] == [
        ("s", ["inspect_device"]), ("unknown", ["inspect_device"])]
    rows = fleet.alerts.offline(at=last + timedelta(hours=2), offline_k=1)
    assert [(r["device_id"], r["n_missed_intervals"]) for r in rows] == [("d-1", 1), ("h-1", 2)]


def test_a_registered_device_that_never_reports_is_offline_after_k_intervals(fleet):
    fleet.ingest("readings", [{"device_id": "h-1", "observed_at": T0 + timedelta(hours=i),
                               "metric": "rssi_dbm", "value": -80.0} for i in range(48)])
    base = {"device_type": "t", "manufacturer": "m", "model": "x", "site": "s", "zone": "z",
            "reporting_interval_s": 3600}
    fleet.ingest("devices", [
        {**base, "device_id": "new-1", "installed_at": T0 + timedelta(hours=46)},  # 1 h ago
        {**base, "device_id": "mute-1", "installed_at": T0},                      # 47 h ago
        {**base, "device_id": "nodate-1"}])                  # no clock to judge it by
    rows = {r["device_id"]: r for r in fleet.query("select * from device_offline")}
    assert set(rows) == {"h-1", "new-1", "mute-1"}
    assert (rows["new-1"]["never_reported"], rows["new-1"]["is_offline"]) == (True, False)
    assert (rows["mute-1"]["never_reported"], rows["mute-1"]["is_offline"]) == (True, True)
    assert rows["mute-1"]["silent_s"] == 47 * 3600 and rows["mute-1"]["last_observed_at"] is None
    assert rows["h-1"]["never_reported"] is False
    fleet.alerts.evaluate(PACK)
    assert offline_alerts(fleet) == ["mute-1"]
