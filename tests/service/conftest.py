"""Fixtures of the service tests; the real mosquitto broker is the live tests' fixture."""

import pytest

from tests.live.conftest import broker  # noqa: F401 - re-exported fixture
from tsfleet.simulate import SimConfig, simulated_fleet


@pytest.fixture(scope="session")
def service_sim():
    """A simulated fleet shared by the service tests: 40 devices, 20 days, seed 3.

    Tests may analyse it and add data; they must not rely on it being unanalysed.
    """
    f = simulated_fleet(SimConfig(n_devices=40, days=20, seed=3))
    yield f
    f.close()
