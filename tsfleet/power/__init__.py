"""Power management: discharge analysis, battery forecasts, criticality, replacement plan."""

from tsfleet.power.api import Power

__all__ = ["Power"]
