"""Performance under load: the saturation point, bottlenecks and the overload trend."""

from __future__ import annotations

import numpy as np
import pytest

from tsfleet.errors import InvalidParameter
from tsfleet.network import fit_hinge, trend_to_capacity


def test_the_overloaded_gateway_saturates_where_the_simulator_put_the_knee(net):
    sat = {r["gateway_id"]: r for r in net.query("select * from network_saturation")}
    truth = net.query("select * from sim.network_gateways where role = 'overloaded'")[0]
    hub = sat[truth["gateway_id"]]
    assert hub["status"] == "fitted"
    assert hub["saturation_msgs_per_s"] == pytest.approx(truth["knee_msgs_per_s"], rel=0.1)
    assert hub["saturation_utilization"] == pytest.approx(
        truth["knee_devices"] / truth["capacity_devices"], rel=0.1)
    assert hub["latency_slope_above"] > 5 * hub["latency_slope_below"]
    assert hub["is_beyond_saturation"]
    # No other gateway ran beyond its knee, so none has a fitted saturation point.
    assert {g for g, r in sat.items() if r["status"] == "fitted"} == {truth["gateway_id"]}
    assert all(r["reason"] for g, r in sat.items() if r["status"] != "fitted")


def test_bottlenecks_are_the_overloaded_gateway(net):
    hub = net.query("select gateway_id from sim.network_gateways where role = 'overloaded'")
    assert [r["gateway_id"] for r in net.network.bottlenecks()] == [hub[0]["gateway_id"]]


def test_the_growing_gateway_is_predicted_to_overload(net):
    fc = {r["gateway_id"]: r for r in net.query("select * from network_overload_forecast")}
    roles = {r["gateway_id"]: r["role"] for r in
             net.query("select gateway_id, role from sim.network_gateways")}
    grow = next(g for g, r in roles.items() if r == "growing")
    assert fc[grow]["status"] == "predicted"
    assert 5 <= fc[grow]["days_to_overload"] <= 30          # the simulator aims at ~15 days
    assert fc[grow]["overload_at"] > fc[grow]["as_of"]
    soon = {g for g, r in fc.items() if r["status"] == "predicted" and r["days_to_overload"] <= 30}
    assert soon == {grow}
    hub = next(g for g, r in roles.items() if r == "overloaded")
    assert fc[hub]["status"] == "over_capacity"
    assert not any(roles[g] in ("failed", "removed") for g in fc)   # only active gateways


def test_incremental_saturation_equals_full(net_path):
    from tsfleet import Fleet

    with Fleet(net_path) as f:
        full = {r["gateway_id"]: r for r in f.network.saturation()}
        some = sorted(full)[:2]
        part = {r["gateway_id"]: r for r in f.network.saturation(gateways=some)}
        f.network.forecast_overload(gateways=some)
        assert len(f.query("select * from network_saturation")) == len(full)
        for g in some:
            for k in ("status", "saturation_msgs_per_s", "p_value", "is_beyond_saturation"):
                assert part[g][k] == full[g][k]
        with pytest.raises(InvalidParameter):
            f.network.saturation(gateways="gw-1")


def test_hinge_fallbacks_say_why():
    rng = np.random.default_rng(1)
    assert fit_hinge(np.arange(10.0), np.arange(10.0)).status == "insufficient_data"
    flat = fit_hinge(np.ones(100), rng.normal(20, 1, 100))
    assert flat.status == "insufficient_data" and "never varied" in flat.reason
    few = fit_hinge(np.r_[np.zeros(95), np.ones(5)], rng.normal(20, 1, 100))
    assert few.status == "insufficient_data"
    x = rng.uniform(0, 2, 400)
    linear = fit_hinge(x, 20 + 5 * x + rng.normal(0, 1, 400))
    assert linear.status == "not_reached" and linear.knee is not None
    mild = fit_hinge(x, 20 + 5 * x + 4 * np.maximum(0, x - 1) + rng.normal(0, 0.2, 400))
    assert mild.status == "not_reached" and "faster" in mild.reason
    slight = fit_hinge(x, 20 + 2 * np.maximum(0, x - 0.5) + rng.normal(0, 0.1, 400))
    assert slight.status == "not_reached" and "rises only" in slight.reason
    steep = fit_hinge(x, 20 + 5 * x + 60 * np.maximum(0, x - 1) + rng.normal(0, 1, 400))
    assert steep.status == "fitted" and steep.knee == pytest.approx(1.0, abs=0.08)


def test_trend_to_capacity_cases():
    assert trend_to_capacity(np.ones(3), 10)["status"] == "insufficient_data"
    assert trend_to_capacity(np.full(10, 12.0), 10)["status"] == "over_capacity"
    assert trend_to_capacity(np.full(10, 5.0), 10)["status"] == "stable"
    down = trend_to_capacity(np.arange(10.0, 0, -1), 20)
    assert down["status"] == "stable" and down["slope_devices_per_day"] < 0
    up = trend_to_capacity(np.arange(10.0) + 1, 20)
    assert up["status"] == "predicted" and up["days_to_overload"] == pytest.approx(10.0)
