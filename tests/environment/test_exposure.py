"""Environment per device and zone: faulty monitors excluded, gaps bounded."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from tsfleet.errors import InvalidParameter, UnknownDevice
from tsfleet.simulate import SimConfig, simulated_fleet


def test_every_injected_monitor_fault_is_found(env_fleet):
    truth = env_fleet.query("select device_id, fault from sim.environment_monitor_faults")
    found = {(r["device_id"], r["fault"]) for r in env_fleet.query(
        "select device_id, fault from environment_monitor_faults")}
    assert {(t["device_id"], t["fault"]) for t in truth} <= found


def test_the_sql_view_of_monitor_hours_flags_the_same_faults(env_fleet):
    # environment_monitor_readings states the checks in SQL; analyze() applies them
    # on arrays: both must exclude the same monitor hours.
    view = {(r["device_id"], r["metric"], r["fault"], r["n"]) for r in env_fleet.query(
        "select device_id, metric, case when is_out_of_range then 'out_of_range' "
        "else 'stuck' end as fault, sum(n_readings) as n from environment_monitor_readings "
        "where not is_valid group by all")}
    found = {(r["device_id"], r["metric"], r["fault"], r["n"]) for r in env_fleet.query(
        "select device_id, metric, fault, sum(n_readings) as n from environment_monitor_faults "
        "where fault <> 'dead' group by all")}
    assert view and view == found


def test_a_failed_sensor_does_not_distort_the_zone_environment(env_fleet, true_env):
    # Zones with a stuck or out-of-range monitor still track the true environment.
    zones = list(true_env.zones["zone"])
    faulty = env_fleet.query("select distinct zone from sim.environment_monitor_faults "
                             "where fault in ('stuck', 'out_of_range')")
    assert faulty
    t0 = true_env.hours[0].astype("datetime64[s]").item()
    for z in faulty:
        rows = env_fleet.query("select hour_at, temperature_c, humidity_pct, vibration_g "
                               "from environment_zone_hourly where zone = ? "
                               "and temperature_c is not null", [z["zone"]])
        i = zones.index(z["zone"])
        h = np.array([int((r["hour_at"] - t0) / timedelta(hours=1)) for r in rows])
        for metric, tol in (("temperature_c", 1.0), ("humidity_pct", 3.0), ("vibration_g", 0.1)):
            got = np.array([r[metric] for r in rows], dtype=float)
            ok = ~np.isnan(got)
            err = np.abs(got[ok] - true_env.env[metric][i, h[ok]])
            assert err.max() < tol, (z, metric, err.max())


def test_short_gaps_are_interpolated_and_long_gaps_stay_gaps(env_fleet):
    gaps = env_fleet.query("select * from sim.environment_gaps order by hours")
    assert [g["hours"] for g in gaps] == [3, 30]
    short, long = gaps
    rows = env_fleet.query("select temperature_c, is_interpolated from environment_zone_hourly "
                           "where zone = ? and hour_at >= ? and hour_at < ?",
                           [short["zone"], short["from_at"], short["to_at"]])
    assert len(rows) == 3 and all(r["is_interpolated"] and r["temperature_c"] is not None
                                  for r in rows)
    rows = env_fleet.query("select temperature_c from environment_zone_hourly "
                           "where zone = ? and hour_at >= ? and hour_at < ?",
                           [long["zone"], long["from_at"], long["to_at"]])
    assert len(rows) == 30 and all(r["temperature_c"] is None for r in rows)
    reported = env_fleet.query("select * from environment_gaps where zone = ? "
                               "and gap_from = ? and not is_filled",
                               [long["zone"], long["from_at"]])
    assert len(reported) == 3  # one per metric
    # Nowhere is a run longer than the limit filled.
    assert env_fleet.query("select count(*) as n from environment_gaps "
                           "where is_filled and hours > 4")[0]["n"] == 0


def test_devices_without_environment_data_are_reported_as_such(env_fleet):
    blind = {r["zone"] for r in env_fleet.query(
        "select zone from sim.environment_zones where not has_monitor_data")}
    assert blind
    rows = env_fleet.query("select zone, env_source, hours_with_environment, p_fail_30d "
                           "from environment_device_exposure")
    none = {r["zone"] for r in rows if r["env_source"] == "none"}
    assert none == blind
    assert all(r["hours_with_environment"] == 0 for r in rows if r["env_source"] == "none")
    findings = {r["subject_id"] for r in env_fleet.query(
        "select subject_id from environment_findings where finding = 'environment_no_data'")}
    assert findings == blind


def test_device_environment_prefers_the_devices_own_reading(env_fleet):
    dev = env_fleet.query("select device_id, zone from devices where device_type = "
                          "'temp_humidity' and zone in (select zone from environment_zone_hourly "
                          "where temperature_c is not null) order by device_id limit 1")[0]
    rows = env_fleet.environment.device_environment(dev["device_id"])
    assert len(rows) == 30 * 24
    own = [r for r in rows if r["is_own"]]
    assert len(own) > 0.8 * len(rows)
    zone = {r["hour_at"]: r for r in env_fleet.query(
        "select * from environment_zone_hourly where zone = ?", [dev["zone"]])}
    diffs = [abs(r["temperature_c"] - zone[r["hour_at"]]["temperature_c"]) for r in own
             if zone[r["hour_at"]]["temperature_c"] is not None]
    assert 0 < np.median(diffs) < 1.5  # own sensor, not a copy of the zone
    assert all(r["humidity_pct"] == zone[r["hour_at"]]["humidity_pct"] for r in rows)
    with pytest.raises(UnknownDevice):
        env_fleet.environment.device_environment("nope-1")


def test_a_fleet_without_environment_monitors():
    fleet = simulated_fleet(SimConfig(n_devices=60, days=7, seed=4))
    fleet.con.execute("delete from readings where device_id in "
                      "(select device_id from devices where device_type = 'env_monitor')")
    fleet.environment.analyze()
    rows = fleet.query("select env_source, count(*) as n from environment_device_exposure "
                       "group by env_source")
    assert [r["env_source"] for r in rows] == ["none"]
    assert fleet.environment.recommendations() == []
    notes = {r["note"] for r in fleet.environment.effects(method="glm_poisson")}
    assert notes == {"no environment data"}
    assert fleet.environment.summary()
    with pytest.raises(InvalidParameter):
        fleet.environment.analyze(max_gap_hours=-1)
    with pytest.raises(InvalidParameter):
        fleet.environment.analyze(p_fail_threshold=1.5)
    with pytest.raises(InvalidParameter, match="threads must be >= 1"):
        fleet.environment.analyze(threads=0)
    fleet.close()
