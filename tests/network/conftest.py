"""A simulated network with every injected phenomenon: two sites, 500 devices, 30 days."""

from __future__ import annotations

import pytest

from tsfleet.simulate import SimConfig, simulated_fleet


@pytest.fixture(scope="session")
def net_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("network") / "net.duckdb"
    fleet = simulated_fleet(SimConfig(n_devices=500, days=30, seed=5), path=str(path))
    fleet.network.analyze()
    fleet.close()
    return str(path)


@pytest.fixture(scope="session")
def net(net_path):
    """The analysed fleet (shared: tests must not change it)."""
    from tsfleet import Fleet

    f = Fleet(net_path)
    yield f
    f.close()


@pytest.fixture(scope="session")
def ids(net):
    """The first column of a query, as a set."""
    return lambda sql, params=None: {r[0] for r in net.con.execute(sql, params or []).fetchall()}
