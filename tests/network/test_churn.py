"""Connection patterns: flapping devices and time-of-day load profiles."""

from __future__ import annotations


def test_flapping_devices_are_exactly_the_simulated_ones(net, ids):
    found = {r["device_id"] for r in net.network.flapping()}
    assert found == ids("select device_id from sim.network_devices where is_flapping")
    per_gw = net.query("select sum(n_flapping_devices) as n from network_gateway_churn")[0]["n"]
    assert per_gw >= len(found)


def test_load_profile_peaks_in_the_afternoon(net):
    hub = net.query("select gateway_id from sim.network_gateways where role = 'overloaded'")
    prof = net.network.profile(hub[0]["gateway_id"])
    assert len(prof) == 24
    peak = max(prof, key=lambda r: r["messages_per_s"])
    night = min(prof, key=lambda r: r["messages_per_s"])
    assert 13 <= peak["hour_of_day"] <= 17 and 1 <= night["hour_of_day"] <= 5
    assert peak["latency_p95_ms"] > 2 * night["latency_ms"]      # beyond the knee at peak
