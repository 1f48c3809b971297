"""One error hierarchy for tsfleet.

Every error tsfleet raises on purpose is a :class:`TsfleetError`. Subclasses also
subclass the matching built-in, so ``except KeyError`` still catches an unknown
device. Messages say what was received and what was expected.
"""

from __future__ import annotations


class TsfleetError(Exception):
    """Base class of every error tsfleet raises on purpose."""


class StoreError(TsfleetError, RuntimeError):
    """The DuckDB store cannot be opened or migrated as asked."""


class ReadOnlyStore(StoreError):
    """A write was attempted on a store opened with ``read_only=True``."""


class UnknownKind(TsfleetError, KeyError):
    """An ingest kind that tsfleet does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; we want a sentence.
        return str(self.args[0]) if self.args else ""


class UnknownDevice(TsfleetError, KeyError):
    """A device id that is not in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IngestError(TsfleetError, ValueError):
    """A whole ingest source is unusable (unreadable file, unknown format)."""


class InvalidParameter(TsfleetError, ValueError):
    """An API argument is outside what the function accepts."""
