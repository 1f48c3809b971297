"""Distribution: attachment now and over time, load against capacity, imbalance."""

from __future__ import annotations

import numpy as np
import pytest

from tsfleet.network import imbalance, jain_index


def test_current_attachment_is_the_simulated_one(net):
    rows = net.query(
        "select a.device_id, a.gateway_id, a.is_attached, t.gateway_id_end, t.last_gateway_id "
        "from network_attachment a join sim.network_devices t using (device_id)")
    assert len(rows) == 500
    for r in rows:
        assert r["gateway_id"] == r["last_gateway_id"]
        assert r["is_attached"] == (r["gateway_id_end"] is not None)


def test_overloaded_and_idle_gateway_at_the_same_site(net):
    load = {r["gateway_id"]: r for r in net.network.load()}
    hub = net.query("select gateway_id, site from sim.network_gateways where role = 'overloaded'")
    idle = net.query("select gateway_id, site from sim.network_gateways where role = 'idle'")
    assert hub[0]["site"] == idle[0]["site"]
    h, i = load[hub[0]["gateway_id"]], load[idle[0]["gateway_id"]]
    assert h["is_over_capacity"] and h["utilization"] == pytest.approx(1.3, abs=0.05)
    assert i["utilization"] < 0.15 and not i["is_bottleneck"]
    over = {g for g, r in load.items() if r["is_over_capacity"]}
    assert over == {hub[0]["gateway_id"]}


def test_removed_and_added_gateways_keep_their_history(net):
    status = {r["gateway_id"]: r["status"] for r in
              net.query("select gateway_id, status from network_gateway_status")}
    role = {r["gateway_id"]: r for r in net.query("select * from sim.network_gateways")}
    old = next(g for g, r in role.items() if r["role"] == "removed")
    new = next(g for g, r in role.items() if r["role"] == "added")
    assert status[old] == "removed" and status[new] == "up"
    daily = net.query("select gateway_id, day, n_attached from network_gateway_daily "
                      "where gateway_id in (?, ?) order by day", [old, new])
    old_days = [r for r in daily if r["gateway_id"] == old]
    assert max(r["n_attached"] for r in old_days) > 10          # it carried devices once
    assert old_days[-1]["n_attached"] == 0                      # and none since its removal
    first_new = min(r["day"] for r in daily if r["gateway_id"] == new)
    assert first_new >= role[new]["installed_at"].date()


def test_site_balance_matches_the_indices_of_gateway_utilization(net):
    load = [r for r in net.network.load() if r["is_active"]]
    sites = sorted({r["site"] for r in load})
    code = np.array([sites.index(r["site"]) for r in load])
    m = imbalance(np.array([r["utilization"] for r in load]), code)
    bal = {r["site"]: r for r in net.network.balance()}
    for i, s in enumerate(sites):
        assert bal[s]["jain_index"] == pytest.approx(m["jain"][i])
        assert bal[s]["gini"] == pytest.approx(m["gini"][i])
        assert bal[s]["cv"] == pytest.approx(m["cv"][i])
        assert bal[s]["max_over_mean"] == pytest.approx(m["max_over_mean"][i])
    hub_site = net.query("select site from sim.network_gateways where role = 'overloaded'")[0]
    assert net.network.balance()[0]["site"] == hub_site["site"]     # least fair first


def test_zone_load_adds_up(net):
    zones = net.query("select sum(n_attached) as n, sum(n_devices) as d from network_zone_load")[0]
    att = net.query("select count(*) filter (where is_attached) as n, count(*) as d "
                    "from network_attachment")[0]
    assert zones == att


def test_imbalance_of_even_and_concentrated_load():
    m = imbalance(np.array([0.4, 0.4, 0.4, 1.0, 0.0, 0.0, 0.0]), np.array([0, 0, 0, 1, 1, 1, 1]))
    assert m["jain"][0] == pytest.approx(1.0) and m["gini"][0] == pytest.approx(0.0)
    assert m["jain"][1] == pytest.approx(0.25) and m["gini"][1] == pytest.approx(0.75)
    assert m["max_over_mean"][1] == pytest.approx(4.0)
    assert np.isnan(imbalance(np.zeros(3))["jain"][0])
    assert jain_index(np.array([0.5, 0.5])) == pytest.approx(1.0)
