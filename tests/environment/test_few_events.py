"""A fleet with few events: thresholds that leave events on both sides, finite fits, and
a failure probability for every device with environment data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet import Fleet
from tsfleet.environment.model import fit_outcome, with_events
from tsfleet.environment.stress import zone_type_hazard
from tsfleet.simulate import SimConfig, simulate


def test_threshold_candidates_leave_an_event_on_each_side():
    x = np.array([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    y = np.array([0.0, 0.0, 2.0, 0.0, 1.0, 0.0])
    grid = np.arange(10.0, 15.5, 0.5)
    assert with_events(grid, x, y).tolist() == [12.5, 13.0, 13.5]
    # no point has an event on both sides: the largest x (the hinge column is then zero)
    assert with_events(grid, x, np.array([0, 0, 0, 0, 0, 3.0])).tolist() == [15.0]
    assert with_events(grid, x[:0], y[:0]).tolist() == grid.tolist()


def test_no_threshold_is_placed_where_one_side_has_no_events():
    """No failure below 18 degC in much exposure, one to three a degree above: a threshold
    below 18 would let the line and the hinge drive the cold side's rate to zero (main
    placed it at 14 with slopes of +-25.6 per degC and a log rate of 151 for the type, a
    fit stopped where the iterations did). The threshold leaves an event on each side and
    the fit is the finite step the data show."""
    x = np.arange(10.0, 31.0) + 0.3
    y = np.array([0] * 8 + [1, 2, 1, 3, 2, 1, 2, 3, 1, 2, 2, 1, 2])
    cells = pd.DataFrame(dict(device_type="pump", device_hours=20000.0, temperature_c=x,
                              age_years=1.0, n_failures=y, n_reboots=0))
    fit = fit_outcome(cells, "failure", factors=("temperature_c",))
    blk = fit.blocks[0]
    assert y[x < blk.threshold].sum() >= 1 and y[x > blk.threshold].sum() >= 1
    assert abs(fit.coef("type:pump")) < 20
    assert abs(fit.coef("temperature_c:linear")) < 10 and abs(fit.coef("temperature_c:above")) < 10
    # the fitted rates hold the counts: cold cells near zero, warm ones near their mean
    mu = fit.predict_rate("pump", 1.0, {"temperature_c": x}) * 20000.0
    assert mu[x < 17].sum() < 0.1 and abs(mu[x > 19].sum() - y[x > 19].sum()) < 1


def test_a_small_fleet_gets_a_failure_probability_for_every_device_with_environment_data():
    """150 devices x 14 days, 23 failures: every device with environment data has a 30-day
    failure probability (they were all missing when the fit ran away: its rates overflowed),
    and the expected failures are of the order the fleet saw."""
    with Fleet(memory=True) as fleet:
        simulate(SimConfig(n_devices=150, days=14, seed=5)).write(fleet)
        fleet.analyze("environment")
        n, with_p, expected = fleet.con.execute(
            "select count(*), count(p_fail_30d), sum(failures_per_30d_expected) "
            "from environment_device_exposure where env_source <> 'none'").fetchone()
        seen = fleet.con.execute("select count(*) from device_events e join "
                                 "environment_device_exposure x using (device_id) where "
                                 "e.event = 'failure' and x.env_source <> 'none'").fetchone()[0]
        assert n > 100 and with_p == n
        # 30 days ahead against 14 days seen: about 30/14 times as many (Poisson noise aside)
        assert 0.5 * seen * 30 / 14 < expected < 2 * seen * 30 / 14
        coef = fleet.con.execute("select max(abs(coefficient)) from environment_model "
                                 "where factor is not null").fetchone()[0]
        assert coef < 100


def test_no_device_types_give_an_empty_hazard_table():
    cells = pd.DataFrame(dict(device_type="pump", device_hours=20000.0,
                              temperature_c=np.arange(10.0, 31.0),
                              age_years=1.0, n_failures=np.arange(21) % 3, n_reboots=0))
    fit = fit_outcome(cells, "failure", factors=("temperature_c",))
    hours = pd.DataFrame({"zone": ["a"] * 3, "temperature_c": [20.0, 21.0, 22.0],
                          "hour_at": pd.date_range("2026-01-01", periods=3, freq="h")})
    assert zone_type_hazard(hours, fit, []).empty
    one = zone_type_hazard(hours, fit, ["pump"])
    assert one["env_factor"].notna().all() and len(one) == 1
