"""Fixtures for the alerts tests."""

from __future__ import annotations

import pytest

from tests.alerts.alerting_helpers import Endpoint, set_findings


@pytest.fixture
def findings():
    """``findings(fleet, domain, rows)``: (re)create ``<domain>_findings`` with ``rows``."""
    return set_findings


@pytest.fixture
def endpoint():
    """A real HTTP endpoint on 127.0.0.1 (see ``Endpoint``)."""
    ep = Endpoint()
    yield ep
    ep.close()
