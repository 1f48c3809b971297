"""Redundancy, single points of failure and gateway failures."""

from __future__ import annotations

from datetime import timedelta


def test_single_points_of_failure_are_exactly_the_simulated_ones(net, ids):
    found = {r["device_id"] for r in net.network.single_points_of_failure()}
    assert found == ids("select device_id from sim.network_devices where is_spof")
    assert len(found) >= 3


def test_stranded_if_failed_counts_devices_without_an_alternative(net):
    truth = net.query("""
        with usable as (
            select l.device_id, l.gateway_id from sim.network_links l
            join sim.network_gateways g using (gateway_id)
            where l.is_usable and g.role not in ('failed', 'removed'))
        select d.gateway_id_end as gateway_id, count(*) as n
        from sim.network_devices d
        where d.gateway_id_end is not null and not exists (
            select 1 from usable u where u.device_id = d.device_id
            and u.gateway_id <> d.gateway_id_end)
        group by 1""")
    red = {r["gateway_id"]: r for r in net.network.redundancy()}
    for t in truth:
        assert red[t["gateway_id"]]["n_stranded_if_failed"] == t["n"]
    for r in red.values():
        assert r["n_devices"] == r["n_stranded_if_failed"] + r["n_with_alternative"]
    targets = net.query("select * from network_failover_targets")
    for g, r in red.items():
        assert sum(t["n_devices"] for t in targets if t["gateway_id"] == g) == \
            r["n_with_alternative"]


def test_the_failed_gateway_is_down_with_its_devices_and_failover_targets(net, ids):
    fail = net.query("select * from sim.network_gateways where role = 'failed'")[0]
    status = {r["gateway_id"]: r for r in net.query("select * from network_gateway_status")}
    assert {g for g, r in status.items() if r["status"] == "down"} == {fail["gateway_id"]}
    since = status[fail["gateway_id"]]["down_since"]
    assert fail["failed_at"] <= since <= fail["failed_at"] + timedelta(hours=2)
    down = net.network.down()
    assert {r["device_id"] for r in down} == ids(
        "select device_id from sim.network_devices where is_stranded")
    usable = {(r[0], r[1]) for r in net.con.execute(
        "select device_id, gateway_id from sim.network_links where is_usable").fetchall()}
    active = {g for g, r in status.items() if r["is_active"]}
    for r in down:
        if r["failover_gateway_id"] is not None:
            assert (r["device_id"], r["failover_gateway_id"]) in usable
            assert r["failover_gateway_id"] in active
        else:
            assert r["is_stranded"]
