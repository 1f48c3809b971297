"""Fixtures of the service tests; the real mosquitto broker is the live tests' fixture."""

from tests.live.conftest import broker  # noqa: F401 - re-exported fixture
