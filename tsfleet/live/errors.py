"""Errors of live ingest, in tsfleet's one hierarchy."""

from __future__ import annotations

from typing import NamedTuple

from tsfleet.errors import TsfleetError


class ProfileError(TsfleetError, ValueError):
    """A vendor device profile file is invalid (named file, field and problem)."""


class PayloadError(TsfleetError, ValueError):
    """A payload cannot be decoded at all; ``reason`` is the quarantine code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Reject(NamedTuple):
    """Why a payload was refused: the quarantine ``reason`` code and a ``detail`` sentence.

    Plain data, never the exception itself: an exception holds its traceback,
    whose frames hold the envelope that holds the exception, a reference cycle
    that only a full garbage collection frees (issue 22: 300k rejected messages
    took ``serve`` from 318 MB to 2.5 GB).

    >>> Reject("invalid_json", "payload is not valid JSON").reason
    'invalid_json'
    """

    reason: str
    detail: str
