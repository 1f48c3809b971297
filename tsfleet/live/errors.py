"""Errors of live ingest, in tsfleet's one hierarchy."""

from __future__ import annotations

from tsfleet.errors import TsfleetError


class ProfileError(TsfleetError, ValueError):
    """A vendor device profile file is invalid (named file, field and problem)."""


class PayloadError(TsfleetError, ValueError):
    """A payload cannot be decoded at all; ``reason`` is the quarantine code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
