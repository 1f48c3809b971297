"""A simulated fleet with the environmental hazard injected, analysed once."""

from __future__ import annotations

import pytest

from tsfleet.simulate import SimConfig, simulated_fleet
from tsfleet.simulate.skeleton import build_skeleton

#: 1,000 devices over 30 days: four sites, twenty zones of every kind, some
#: 3,000 failures and reboots; small enough for the test budget.
CONFIG = SimConfig(n_devices=1000, days=30, seed=5)


def analysed(config: SimConfig):
    """A simulated fleet of ``config`` with its environment analysed, closed afterwards
    (the body of a fixture: ``yield from analysed(config)``)."""
    fleet = simulated_fleet(config)
    fleet.environment.analyze()
    yield fleet
    fleet.close()


@pytest.fixture(scope="session")
def env_fleet():
    yield from analysed(CONFIG)


@pytest.fixture(scope="session")
def true_env():
    """The skeleton's true hourly environment per zone (same config, same numbers)."""
    return build_skeleton(CONFIG)
