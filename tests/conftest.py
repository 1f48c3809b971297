"""Shared fixtures: small simulated fleets with known ground truth."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulated_fleet


@pytest.fixture
def fleet():
    """An empty in-memory store."""
    f = Fleet(memory=True)
    yield f
    f.close()


@pytest.fixture(scope="session")
def small_sim_fleet():
    """A shared, read-mostly simulated fleet: 200 devices, 45 days, seed 11.

    Tests that write into it must not change what other tests read; build
    your own fleet with ``simulated_fleet`` when in doubt.
    """
    f = simulated_fleet(SimConfig(n_devices=200, days=45, seed=11))
    yield f
    f.close()
