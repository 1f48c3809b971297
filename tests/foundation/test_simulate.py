"""The simulator: deterministic, honest about delivery, truth stored in sim."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate import SimConfig, simulate, simulated_fleet


def test_same_seed_same_data_other_seed_other_data():
    a = simulate(SimConfig(n_devices=60, days=8, seed=3))
    b = simulate(SimConfig(n_devices=60, days=8, seed=3))
    c = simulate(SimConfig(n_devices=60, days=8, seed=4))
    for field in ("device_idx", "hour_idx", "value", "chunk"):
        assert np.array_equal(getattr(a.delivered, field), getattr(b.delivered, field))
    assert not np.array_equal(a.delivered.value[:100], c.delivered.value[:100])


def test_written_fleet_matches_truth_and_is_messy():
    f = simulated_fleet(SimConfig(n_devices=80, days=20, seed=5))
    truth = f.query("select sum(n_duplicates_sent) as dup, sum(n_late_readings) as late, "
                    "sum(n_lost_hours) as lost from sim.delivery")[0]
    batches = f.query("select sum(n_duplicates) as dup, sum(n_quarantined) as q "
                      "from ingest_batches where kind = 'readings'")[0]
    assert truth["dup"] > 0 and truth["late"] > 0 and truth["lost"] > 0
    assert batches["dup"] == truth["dup"]   # every retransmission absorbed, none stored twice
    # The only rejects are physically impossible values (noise past a limit) and the
    # firmware generator's deliberately unparsable version strings.
    reasons = {r["reason"] for r in f.query("select distinct reason from quarantine")}
    assert reasons <= {"out_of_range", "unparsable_version"}
    # Devices report at their own phase offset, not on the hour.
    assert f.query("select count(distinct second(observed_at) + 60 * minute(observed_at)) as n "
                   "from readings")[0]["n"] > 40
    # Several vendors, chemistries and voltage-only devices.
    kinds = f.query("select count(distinct manufacturer) as m, count(distinct battery_chemistry)"
                    " as c from devices")[0]
    assert kinds["m"] >= 4 and kinds["c"] >= 3
    assert f.query("select count(distinct device_id) as n from readings "
                   "where metric = 'battery_voltage_v'")[0]["n"] > 0
    # Sleepy devices report once a day.
    sleepy = f.query("select max(n) as n from (select device_id, count(*) as n from readings "
                     "join devices using (device_id) where reporting_interval_s = 86400 and "
                     "metric = 'battery_pct' group by device_id)")[0]["n"]
    assert sleepy is None or sleepy <= 21
