"""Environmental analysis: environment per device over time, its relation to
failures and performance, operating envelopes, stress and recommendations."""

from tsfleet.environment.api import Environment

__all__ = ["Environment"]
