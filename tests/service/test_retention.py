"""Retention keeps hour-level history in rollups after raw readings age out."""

from __future__ import annotations

import pytest

from tsfleet import InvalidParameter
from tsfleet.simulate import SimConfig, simulated_fleet

TOTALS = ("select metric, sum(n_readings) as n, round(sum(value_mean * n_readings), 3) as s "
          "from readings_history group by metric order by metric")


@pytest.fixture(scope="module")
def sim():
    f = simulated_fleet(SimConfig(n_devices=30, days=20, seed=2))
    yield f
    f.close()


def test_rollups_preserve_hourly_totals_and_rerun_is_a_no_op(sim):
    before = sim.query(TOTALS)
    n_raw = sim.query("select count(*) as n from readings")[0]["n"]
    res = sim.retain(raw_days=7)
    assert 0 < res.n_raw_deleted < n_raw
    assert sim.query("select min(observed_at) as t from readings")[0]["t"] >= res.cutoff_at
    assert sim.query(TOTALS) == before
    again = sim.retain(raw_days=7)
    assert (again.n_raw_deleted, again.n_hourly_rows) == (0, 0)
    assert sim.query(TOTALS) == before
    daily = sim.query("select sum(n_readings) as n from readings_daily_rollup")[0]["n"]
    assert daily == res.n_raw_deleted


def test_late_data_older_than_the_cutoff_merges_into_the_rollup(sim):
    hour = sim.query("select device_id, metric, hour_at, value_mean, n_readings "
                     "from readings_hourly_rollup order by all limit 1")[0]
    late = {"device_id": hour["device_id"], "metric": hour["metric"],
            "observed_at": hour["hour_at"].isoformat() + "Z", "value": hour["value_mean"] + 10}
    assert sim.ingest("readings", [late]).n_accepted == 1
    sim.retain(raw_days=7)
    merged = sim.query("select value_mean, n_readings from readings_hourly_rollup "
                       "where device_id = ? and metric = ? and hour_at = ?",
                       [hour["device_id"], hour["metric"], hour["hour_at"]])[0]
    n = hour["n_readings"]
    assert merged["n_readings"] == n + 1
    assert merged["value_mean"] == pytest.approx((hour["value_mean"] * n
                                                  + late["value"]) / (n + 1))


def test_bad_parameters_and_empty_store(fleet):
    with pytest.raises(InvalidParameter):
        fleet.retain(raw_days=0)
    assert fleet.retain(raw_days=5).n_raw_deleted == 0
