"""What a decoder makes of one payload: rows per ingest kind, unmapped fields, or a reject.

Readings are kept as four column lists (the hot path: a batch of messages is
turned into one Arrow table for :meth:`tsfleet.Fleet.ingest`); the rarer kinds
(``firmware_reports``, ``update_events``) as lists of row dicts. Nothing here
validates a value: the foundation's ingest pipeline does that, for every source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Unix seconds a time must lie within to be handed over as a number; anything
#: else is handed over as text so that the pipeline quarantines it as a bad
#: timestamp (DuckDB's to_timestamp would raise on it and fail the whole batch).
_EPOCH_LO, _EPOCH_HI = -1e10, 1e11


def is_number(x: object) -> bool:
    """A JSON/CBOR number (``bool`` is not one)."""
    t = type(x)
    return t is float or t is int or (t is not bool and isinstance(x, (int, float)))


def time_cell(t: object) -> float | str | None:
    """A resolved time as the pipeline should see it: seconds, or text when unusable."""
    if type(t) is float and _EPOCH_LO < t < _EPOCH_HI:  # the common case, NaN fails it
        return t
    if is_number(t):
        try:
            t = float(t)
        except OverflowError:  # an integer too large for a float
            return number_text(t)
        if math.isfinite(t) and _EPOCH_LO < t < _EPOCH_HI:
            return t
        # digits alone the pipeline would convert as epoch seconds, which fails past the
        # year 294,247: exponent notation is text it judges as a time it cannot read
        text = repr(t)
        return text if "e" in text or "n" in text else f"{t:.9e}"
    return None if t is None else str(t)


def value_cell(v: object) -> float | str | None:
    """A value as the pipeline should see it: a float, or text it will judge."""
    if type(v) is float:
        return v
    if is_number(v):
        try:
            return float(v)
        except OverflowError:  # a huge CBOR integer
            return number_text(v)
    return None if v is None else str(v)


def number_text(n: object) -> str:
    """A number as text for the pipeline to judge, whatever its size: an integer past
    64 bits is described rather than written (Python refuses to write more than
    4,300 digits, and digits alone would be read as a number again).

    >>> number_text(10 ** 5000)
    'an integer of about 5001 digits'
    """
    if type(n) is int and n.bit_length() > 64:
        return f"an integer of about {len(format(abs(n), 'x')) * math.log10(16):.0f} digits"
    return str(n)


#: The column order of the kinds a decoder may add as tuples (:meth:`Decoded.add_tuple`).
TUPLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "connections": ("device_id", "gateway_id", "event_at", "event", "rssi_dbm", "snr_db"),
    "lorawan_uplinks": ("device_id", "uplink_at", "f_cnt", "f_port", "dr", "n_gateways",
                        "downlink_gateway_id", "network_server"),
}


@dataclass
class Unmapped:
    """A field no mapping knows: kept with its payload in the ``unmapped`` table."""

    item: int          # position of the field in the payload (record index or key order)
    field: str
    value: str | None
    unit: str | None
    reason: str
    device_id: str | None = None
    observed_at: float | None = None


@dataclass
class Decoded:
    """The rows of one payload, ready for the pipeline."""

    fmt: str
    device_id: list[str | None] = field(default_factory=list)
    observed_at: list[Any] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    value: list[Any] = field(default_factory=list)
    facts: dict[str, list[dict]] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)
    #: hot-path rows as tuples in the column order of :data:`TUPLE_COLUMNS` (a tuple
    #: costs a third of a dict; the writer turns a batch of them into Arrow columns)
    tuples: dict[str, list[tuple]] = field(default_factory=dict)
    #: :attr:`n_rows` as counted by :meth:`seal` (the writer asks for it twice per payload)
    _n_rows: int | None = field(default=None, repr=False, compare=False)

    def add_reading(self, device_id: str | None, observed_at: object, metric: str,
                    value: object) -> None:
        self.device_id.append(device_id)
        self.observed_at.append(time_cell(observed_at))
        self.metric.append(metric)
        self.value.append(value_cell(value))

    def add_fact(self, kind: str, row: dict) -> None:
        self.facts.setdefault(kind, []).append(row)

    def add_tuple(self, kind: str, row: tuple) -> None:
        self.tuples.setdefault(kind, []).append(row)

    def seal(self) -> Decoded:
        """The rows are complete: the row lists become tuples, and ``self`` is returned.

        For a payload held until its batch commits (thousands at a time). A tuple
        holding only text and numbers is dropped from the garbage collector's tracking
        the first time a collection sees it, a list never is: with lists, each held
        ChirpStack uplink kept about 12 containers that every collection of the older
        generations walked again (decoding measured 27.8 -> 21.4 us per uplink with the
        collector on, unchanged with it off). Readers (the writer) only iterate; adding
        rows afterwards raises ``AttributeError``.
        """
        if self._n_rows is not None:  # sealed already (built sealed by a decoder)
            return self
        self.device_id, self.observed_at = tuple(self.device_id), tuple(self.observed_at)
        self.metric, self.value = tuple(self.metric), tuple(self.value)
        self.unmapped = tuple(self.unmapped)
        if self.tuples:
            self.tuples = {k: tuple(v) for k, v in self.tuples.items()}
        self._n_rows = self.n_rows
        return self

    def rows_of(self, kind: str) -> list[dict]:
        """Every row of ``kind``, dicts and tuples alike, as dicts."""
        cols = TUPLE_COLUMNS.get(kind, ())
        return list(self.facts.get(kind, ())) + [dict(zip(cols, r, strict=True))
                                                 for r in self.tuples.get(kind, ())]

    @property
    def n_readings(self) -> int:
        return len(self.metric)

    @property
    def n_rows(self) -> int:
        if self._n_rows is not None:  # sealed: the rows cannot change
            return self._n_rows
        return (self.n_readings + sum(len(v) for v in self.facts.values())
                + sum(len(v) for v in self.tuples.values()) + len(self.unmapped))


def choose_device(payload_device: object, topic_device: str | None, device_from: str) -> str | None:
    """The device id by the configured source: ``topic``, ``payload`` or ``auto``
    (the payload's when it names one, else the topic's)."""
    if device_from == "topic":
        return topic_device
    if isinstance(payload_device, (list, dict, bool)):
        # one id, not its JSON (a list landed as "['list']"): the payload is quarantined
        from tsfleet.live.errors import PayloadError

        raise PayloadError("bad_value", "the payload's device id must be one id (text or a "
                           f"number), got {type(payload_device).__name__} "
                           f"{str(payload_device)[:60]}")
    if payload_device in (None, "") and device_from == "auto":
        return topic_device
    return None if payload_device in (None, "") else str(payload_device)
