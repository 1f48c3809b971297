"""Fixtures of the live-ingest tests: a real mosquitto broker on 127.0.0.1."""

from __future__ import annotations

import pytest

from tsfleet.live.broker import LocalBroker, find_mosquitto


@pytest.fixture
def broker():
    """A fresh mosquitto with persistence, stopped and removed after the test."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); the MQTT tests "
                    "need a real broker")
    b = LocalBroker().start()
    yield b
    b.close()
