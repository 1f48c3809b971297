"""Incremental power runs (issue 11): the daily aggregates fold in only new data,
a forecast of the devices with new data equals a full run, and the analysis
gives the same verdicts once raw readings aged out into the hourly rollup."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from tsfleet import Fleet
from tsfleet.power import daystats
from tsfleet.service.retention import apply_retention
from tsfleet.simulate import SimConfig, simulated_fleet

FORECAST = "select * exclude (computed_at, params) from battery_forecast order by device_id"
DAY_STATS = "select * from battery_day_stats order by device_id, day"


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> str:
    """The simulated store (60 devices, 30 days, seed 4), built once and closed."""
    path = str(tmp_path_factory.mktemp("incremental") / "small.duckdb")
    simulated_fleet(SimConfig(n_devices=60, days=30, seed=4), path=path).close()
    return path


@pytest.fixture()
def small(small_file, tmp_path):
    """A private copy of the simulated store: every test writes into its own."""
    shutil.copyfile(small_file, tmp_path / "small.duckdb")
    f = Fleet(str(tmp_path / "small.duckdb"))
    yield f
    f.close()


def one_more_day(fleet, devices):
    last = fleet.frame("select device_id, max(observed_at) as t, arg_max(value, observed_at) "
                       "as v from readings where metric = 'battery_pct' and device_id in "
                       "(select unnest(?)) group by all order by device_id", [devices])
    return pd.DataFrame([{"device_id": r.device_id, "observed_at": r.t + timedelta(hours=h),
                          "metric": "battery_pct", "value": max(r.v - 0.03 * h, 0.0)}
                         for r in last.itertuples() for h in range(1, 25)])


def test_incremental_forecast_recomputes_only_new_data_and_equals_a_full_run(small):
    small.power.forecast(30)
    before = small.frame(FORECAST).set_index("device_id")
    stamp = dict(small.con.execute("select device_id, computed_at from battery_forecast")
                 .fetchall())
    changed = sorted(before.index[before.method == "holt_winters"][:3])
    small.ingest("readings", one_more_day(small, changed))
    # the daily aggregates fold in only the new days ...
    assert daystats.refresh(small.con) == len(changed)       # one new day each
    assert daystats.refresh(small.con) == 0
    incremental_days = small.frame(DAY_STATS)
    daystats.refresh(small.con, full=True)
    pd.testing.assert_frame_equal(incremental_days, small.frame(DAY_STATS))
    # ... and the forecast recomputes only the devices with new data
    assert small.power.analyze(devices=changed) == len(changed)
    redone = {d for d, t in small.con.execute(
        "select device_id, computed_at from battery_forecast").fetchall() if t != stamp[d]}
    assert redone == set(changed)
    incremental = small.frame(FORECAST)
    small.power.forecast(30)
    pd.testing.assert_frame_equal(incremental, small.frame(FORECAST))
    inc = incremental.set_index("device_id")
    assert (inc.loc[changed, "as_of"] > before.loc[changed, "as_of"]).all()
    others = [d for d in inc.index if d not in changed]
    pd.testing.assert_frame_equal(inc.loc[others], before.loc[others])


def test_stale_pooled_parameters_widen_an_incremental_run_to_the_fleet(small):
    small.power.forecast(30)
    small.con.execute("delete from battery_holt_params")
    n_all = small.query("select count(*) as n from battery_forecast")[0]["n"]
    some = [r["device_id"] for r in small.query("select device_id from battery_forecast limit 2")]
    assert small.power.analyze(devices=some) == n_all


def test_same_verdicts_after_raw_readings_age_out(small):
    small.power.forecast(30)
    verdicts = small.frame(
        "select f.device_id, f.method, f.pattern, f.drop_pct, f.days_to_critical, "
        "s.power_state, t.pattern as true_pattern from battery_forecast f "
        "join battery_state s using (device_id) join sim.battery t using (device_id) "
        "order by device_id")
    res = apply_retention(small, raw_days=7)
    assert res.n_raw_deleted > 0
    daystats.refresh(small.con, full=True)     # rebuilt from the rollup and the raw last week
    small.power.forecast(30)
    after = small.frame(
        "select f.device_id, f.method, f.pattern, f.drop_pct, f.days_to_critical, "
        "s.power_state from battery_forecast f join battery_state s using (device_id) "
        "order by device_id")
    assert len(after) == len(verdicts)
    for col in ("method", "pattern", "power_state"):
        assert (after[col] == verdicts[col]).all(), col
    np.testing.assert_allclose(after.drop_pct, verdicts.drop_pct, rtol=1e-6, atol=1e-6)
    # the verdicts are the simulator's truth where it is clear-cut
    steady = verdicts[verdicts.true_pattern == "steady"]
    assert len(steady) and (steady.method == "holt_winters").mean() > 0.8


def test_voltage_only_devices_are_corrected_alike_in_a_run_of_a_few(small):
    """The load sag of voltage-only devices is pooled per device type: a forecast of a few
    of them corrects them exactly as the fleet forecast did, including one whose battery
    was swapped days ago (too short a segment to show its own sag: the type's median)."""
    px = small.frame("select device_id from devices where model = 'PX-3' "
                     "order by device_id").device_id.tolist()
    assert len(px) >= 3
    end = small.query("select max(observed_at) as t from readings")[0]["t"]
    small.ingest("device_events", [dict(device_id=px[0], event_at=end - timedelta(days=5),
                                        event="battery_replaced")])
    small.power.forecast(30)
    full = small.frame(FORECAST).set_index("device_id").loc[px[:2]]
    sag = small.frame("select device_id, load_sag_v_at_20c as v from battery_patterns "
                      "where device_id in (select unnest(?))", [px]).set_index("device_id").v
    pooled = small.query("select sag_v_at_20c from battery_holt_params "
                         "where device_type = (select device_type from devices "
                         "where device_id = ?)", [px[0]])[0]["sag_v_at_20c"]
    assert sag.notna().all() and sag[px[0]] == pooled > 0
    small.power.forecast(30, devices=px[:2])
    pd.testing.assert_frame_equal(small.frame(FORECAST).set_index("device_id").loc[px[:2]], full)
