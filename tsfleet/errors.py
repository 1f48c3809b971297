"""One error hierarchy for tsfleet.

Every error tsfleet raises on purpose is a :class:`TsfleetError`. Subclasses also
subclass the matching built-in, so ``except KeyError`` still catches an unknown
device. Messages say what was received and what was expected.
"""

from __future__ import annotations

import re


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


def check_count(name: str, value: object, low: int = 1) -> None:
    """``value`` must be a whole number (not a bool) of at least ``low``.

    >>> check_count("limit", 0)
    Traceback (most recent call last):
    ...
    tsfleet.errors.InvalidParameter: limit must be a whole number from 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidParameter(f"{name} must be a whole number from {low}, got {value!r}")


#: what a 120-column line leaves for a message after the CLI's ``tsfleet: error: ``
LINE_WIDTH = 120 - len("tsfleet: error: ")


def nearest(value: str, known: list[str]) -> str | None:
    """The one of ``known`` nearest to ``value`` when one is close (difflib's ratio of at
    least 0.6), else None: what every "did you mean" of the CLI and the API names.

    Of names as near as each other, one that ``value`` is the start of, or that starts it
    (a character left off or added at the end), wins, then the first in order.

    >>> nearest("th-0023", ["th-00293", "th-00230"]), nearest("zzz", ["th-1"])
    ('th-00230', None)
    """
    import difflib

    near = difflib.get_close_matches(value, known, n=10)
    if not near:
        return None

    def score(name: str) -> float:
        return difflib.SequenceMatcher(None, value, name).ratio()

    top = score(near[0])
    return min((c for c in near if score(c) == top),
               key=lambda c: (not (c.startswith(value) or value.startswith(c)), c))


def suggest(value: str, known: list[str], width: int, listing: str = "it has: ") -> str:
    """``did you mean 'x'?`` with the nearest of ``known`` to ``value`` when one is close,
    else ``listing`` and as many of ``known`` as fit ``width`` characters.

    >>> suggest("redings", ["readings", "devices"], 60)
    "did you mean 'readings'?"
    >>> suggest("x", ["readings", "devices", "gateways"], 30, "expected one of ")
    'expected one of readings, ...'
    """
    near = nearest(value, known)
    if near is not None:
        return f"did you mean {near!r}?"
    shown: list[str] = []
    for name in known:
        if len(listing) + len(", ".join([*shown, name, "..."])) > width:
            shown.append("...")
            break
        shown.append(name)
    return listing + ", ".join(shown)


def did_you_mean(value: str, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` with the :func:`nearest` of ``known``, else "": the tail of
    an error for an id typed wrong (a device id among thousands is not listed).

    >>> did_you_mean("th-0023", ["th-00293", "th-00230"]), did_you_mean("zzz", ["th-1"])
    ("; did you mean 'th-00230'?", '')
    """
    near = nearest(value, known)
    return "" if near is None else f"; did you mean {near!r}?"


def unknown_name(what: str, value: str, known: list[str],
                 width: int = LINE_WIDTH) -> InvalidParameter:
    """The error for a name the store does not have (a typo in a filter must not read as an
    empty answer): the nearest known name when one is close, else as many of the known
    names as fit one line of ``width`` characters.

    >>> str(unknown_name("site", "plnt-a", ["plant-a", "plant-b"]))
    "no site 'plnt-a' in the store; did you mean 'plant-a'?"
    >>> str(unknown_name("site", "x", []))
    "no site 'x' in the store; it has none"
    """
    text = f"no {what} {value!r} in the store"
    if not known:
        return InvalidParameter(f"{text}; it has none")
    return InvalidParameter(f"{text}; {suggest(value, known, width - len(text) - 2)}")


#: what a 120-column line leaves for DuckDB's words after ``tsfleet: error: SQL error: ``
SQL_ERROR_WIDTH = LINE_WIDTH - len("SQL error: ")


def sql_error(exc: Exception) -> TsfleetError:
    """DuckDB's error as one line: its first sentence with its hint (``Did you mean
    "battery_forecast"?``, ``Candidate bindings: ...``), the error class dropped where the
    line would not fit 120 columns, and cut with "..." beyond that.

    >>> str(sql_error(RuntimeError('Catalog Error: Table with name batery_forecast does not '
    ...                            'exist!\\nDid you mean "battery_forecast"?\\n\\nLINE 1: ...')))
    'SQL error: Table with name batery_forecast does not exist! Did you mean "battery_forecast"?'
    """
    ro = re.search(r'statement of type "(\w+)" on database "[^"]*" which is attached in '
                   r'read-only mode', str(exc))
    if ro:      # DuckDB's sentence, cut at "read-onl..."; say what it means here
        kind = ro.group(1)
        article = "an" if kind[0] in "AEIOU" else "a"
        return TsfleetError(f"tsfleet sql only reads: {article} {kind} statement is not run "
                            "(write with tsfleet ingest or the Python API)")
    head = str(exc).split("\n\n", 1)[0].strip()
    lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
    text = " ".join(lines[:1] + [ln for ln in lines[1:2]
                                  if ln.startswith(("Did you mean", "Candidate"))])
    kind = re.match(r"[A-Za-z ]{1,40} Error: ", text)
    if len(text) > SQL_ERROR_WIDTH and kind:
        text = text[kind.end():]
    if len(text) > SQL_ERROR_WIDTH:
        text = text[: SQL_ERROR_WIDTH - 3].rstrip() + "..."
    return TsfleetError(f"SQL error: {text}")
