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


def unknown_name(what: str, value: str, known: list[str], width: int = 96) -> InvalidParameter:
    """The error for a name the store does not have (a typo in a filter must not read as an
    empty answer): the nearest known name when one is close, else as many of the known
    names as fit one line of ``width`` characters.

    >>> str(unknown_name("site", "plnt-a", ["plant-a", "plant-b"]))
    "no site 'plnt-a' in the store; did you mean 'plant-a'?"
    >>> str(unknown_name("site", "x", []))
    "no site 'x' in the store; it has none"
    """
    import difflib

    text = f"no {what} {value!r} in the store"
    near = difflib.get_close_matches(value, known, n=1)
    if near:
        return InvalidParameter(f"{text}; did you mean {near[0]!r}?")
    if not known:
        return InvalidParameter(f"{text}; it has none")
    text += "; it has: "
    shown: list[str] = []
    for name in known:
        if len(text) + len(", ".join([*shown, name])) > width:
            shown.append("...")
            break
        shown.append(name)
    return InvalidParameter(text + ", ".join(shown))
