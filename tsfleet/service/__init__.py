"""The running service: incremental analysis runs, freshness, device cards."""

from tsfleet.service.card import device_card
from tsfleet.service.runner import ANALYSES, RunResult, run_analyses

__all__ = ["ANALYSES", "RunResult", "device_card", "run_analyses"]
