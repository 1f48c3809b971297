"""SenML (RFC 8428) packs in JSON and CBOR -> resolved records.

Resolution follows the RFC: base fields apply to the records after them until
replaced; the name is ``bn + n``, the time ``bt + t``, the value ``bv + v`` and
the sum ``bs + s``; ``u`` overrides ``bu``. A resolved time of 2**28 or more is
absolute Unix seconds, a smaller one is relative to the moment of receipt.
A label ending in ``_`` must be understood, so a pack carrying one is rejected.

>>> recs = resolve(parse_json(b'[{"bn":"th-1/","bt":1780000000,"n":"temp","u":"Cel","v":21.5}]'),
...                now=0.0)
>>> (recs[0].name, recs[0].time, recs[0].unit, recs[0].value)
('th-1/temp', 1780000000.0, 'Cel', 21.5)
"""

from __future__ import annotations

import ast
import base64
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import cbor2

from tsfleet.live.decoded import is_number
from tsfleet.live.errors import PayloadError
from tsfleet.live.jsonkeys import check_unique_keys

#: CBOR integer labels of RFC 8428, section 6.
CBOR_LABELS = {-1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
               0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd"}
LABELS = {v: k for k, v in CBOR_LABELS.items()}
VALUE_FIELDS = ("v", "vs", "vb", "vd")
#: Labels of RFC 8428; a record with only these needs no must-understand check.
KNOWN_LABELS = frozenset(LABELS)
#: SenML version this reader understands (RFC 8428 is 10).
SENML_VERSION = 10
#: Below this a resolved time is relative to now (RFC 8428, section 4.5.3).
RELATIVE_LIMIT = 2 ** 28


@dataclass(slots=True)
class Record:
    """One resolved SenML record."""

    index: int
    base_name: str
    name: str            # bn + n
    unit: str | None
    time: Any            # float seconds, or the raw value when it was not a number
    value: Any           # resolved v (number), vs (str), vb (bool), vd (bytes), or None
    value_field: str | None
    sum: Any = None


def parse_json(payload: bytes) -> list[dict]:
    """A SenML JSON pack as a list of label dicts; ``PayloadError`` if it is not one."""
    return _check_pack(load_json(payload), "JSON")


def load_json(payload: bytes) -> object:
    """One JSON document; ``PayloadError`` (``invalid_json``) for anything else,
    including an integer of more than 4,300 digits and nesting deeper than the
    interpreter's recursion limit; ``duplicate_field`` for an object giving a key
    twice (:mod:`tsfleet.live.jsonkeys`)."""
    try:
        obj = json.loads(payload)
    except UnicodeDecodeError as exc:
        raise PayloadError("invalid_json", f"payload is not UTF-8 text: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise PayloadError("invalid_json", f"payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("invalid_json", "payload is not valid JSON: nested too deeply"
                           ) from None
    check_unique_keys(obj, payload)
    return obj


def load_cbor(payload: bytes, labels: dict | None = None) -> object:
    """Exactly one CBOR data item; ``PayloadError`` (``invalid_cbor``) for anything
    else, including bytes after the item (``cbor2.loads`` ignores them);
    ``duplicate_field`` for a map giving a key twice (cbor2 would keep the last value;
    RFC 8949, section 5.6, calls such a map invalid). ``labels`` names integer keys in
    the detail (SenML's ``2`` is ``v``)."""
    try:
        return _load_cbor(payload, allow_duplicate_keys=False)
    except PayloadError as exc:
        # Read again keeping the last value: a payload broken otherwise too gets the
        # reason and detail it had before; only a payload that failed pays for this.
        _load_cbor(payload)
        raise _duplicate(exc, labels) from None


def _load_cbor(payload: bytes, **kw: bool) -> object:
    fp = io.BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(fp, **kw).decode()
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several types for broken input
        raise PayloadError("invalid_cbor", f"payload is not valid CBOR: {exc}") from None
    if fp.tell() != len(payload):
        raise PayloadError("invalid_cbor", f"payload is not valid CBOR: {len(payload) - fp.tell()} "
                           f"bytes follow the data item that ends at byte {fp.tell()}")
    return item


_DUPLICATE = re.compile(r"Duplicate map key: (.*)\Z", re.S)


def _duplicate(exc: PayloadError, labels: dict | None) -> PayloadError:
    """``duplicate_field`` naming the key of cbor2's message (its ``repr``); ``exc`` as it
    is if the message names none (cbor2 6.1 to 6.3 name it)."""
    m = _DUPLICATE.search(exc.detail)
    if m is None:  # pragma: no cover - no other difference between the two readings
        return exc
    try:
        key = ast.literal_eval(m[1])  # 'v', 2, b'ab', 1.0, (1, 2)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        key = m[1]
    if type(key) is int and labels and key in labels:
        name = f"{labels[key]} (label {key})"
    else:
        name = key if type(key) is str else m[1]
    return PayloadError("duplicate_field", f"field {name[:200]} appears more than once in the "
                        "object")


def parse_cbor(payload: bytes) -> list[dict]:
    """A SenML CBOR pack (integer labels) as a list of label dicts; ``duplicate_field``
    for a record giving a label twice, also as its number and its name (``2`` and
    ``"v"``)."""
    pack = _check_pack(load_cbor(payload, CBOR_LABELS), "CBOR")
    out = []
    names = False
    for rec in pack:
        named = {}
        for k, v in rec.items():
            if isinstance(k, int):
                if k in CBOR_LABELS:
                    named[CBOR_LABELS[k]] = v
                continue  # unknown integer labels are ignorable extensions
            named[str(k)] = v
            names = True
        out.append(named)
    if names:  # a label may be given as its number and as its name (2 and "v")
        for rec in pack:
            _named_twice(rec)
    return out


def _named_twice(rec: dict) -> None:
    seen: set[str] = set()
    for k in rec:
        if isinstance(k, int):
            if k not in CBOR_LABELS:
                continue
            name = CBOR_LABELS[k]
        else:
            name = str(k)
        if name in seen:
            raise PayloadError("duplicate_field", f"field {name[:200]} appears more than once "
                               "in the object (as its label and its name)")
        seen.add(name)


def _check_pack(pack: object, what: str) -> list[dict]:
    if not isinstance(pack, list):
        raise PayloadError("invalid_senml",
                           f"a SenML {what} pack must be an array of records, "
                           f"got {type(pack).__name__}")
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            raise PayloadError("invalid_senml", f"SenML record {i} must be a map, "
                               f"got {type(rec).__name__}")
    return pack


def resolve(pack: list[dict], now: float) -> list[Record]:
    """Resolve base fields, names, times and values of a parsed pack."""
    bn, bt, bu, bv, bs = "", 0.0, None, None, None
    out = []
    for i, rec in enumerate(pack):
        for label in (() if rec.keys() <= KNOWN_LABELS else rec):
            if isinstance(label, str) and label.endswith("_"):
                raise PayloadError("invalid_senml", f"SenML record {i} has the must-understand "
                                   f"label {label!r}, which this reader does not understand")
        if "bn" in rec or "bt" in rec or "bu" in rec or "bv" in rec or "bs" in rec or \
                "bver" in rec:
            if "bver" in rec and (not is_number(rec["bver"]) or rec["bver"] > SENML_VERSION):
                raise PayloadError("invalid_senml", f"SenML record {i}: bver {rec['bver']!r} is "
                                   f"newer than the supported version {SENML_VERSION}")
            if "bn" in rec:
                if not isinstance(rec["bn"], str):
                    raise PayloadError("invalid_senml", f"SenML record {i}: bn must be text, "
                                       f"got {rec['bn']!r}")
                bn = rec["bn"]
            bt = rec.get("bt", bt)
            bu = rec.get("bu", bu)
            bv = rec.get("bv", bv)
            bs = rec.get("bs", bs)
        n = rec.get("n", "")
        if not isinstance(n, str):
            raise PayloadError("invalid_senml", f"SenML record {i}: n must be text, got {n!r}")
        present = ["v"] if "v" in rec and len(rec) <= 4 and "vs" not in rec and "vb" not in rec \
            and "vd" not in rec else [f for f in VALUE_FIELDS if f in rec]
        if len(present) > 1:
            raise PayloadError("invalid_senml", f"SenML record {i} carries {len(present)} value "
                               f"fields ({', '.join(present)}); a record carries exactly one")
        field = present[0] if present else None
        value = rec[field] if field else None
        if field == "v" and bv is not None:
            value = _add(bv, value)
        elif field is None and bv is not None and "s" not in rec:
            field, value = "v", bv
        elif field == "vd" and isinstance(value, str):
            value = _b64url(value, i)
        total = _add(bs, rec["s"]) if "s" in rec and bs is not None else rec.get("s")
        if field is None and total is None:
            raise PayloadError("invalid_senml", f"SenML record {i} ({bn + n or 'unnamed'}) "
                               "carries no value and no sum")
        t = rec.get("t", 0)
        t = bt + t if type(bt) is type(t) is float else _add(bt, t)
        if is_number(t) and t < RELATIVE_LIMIT:
            t = _add(now, t)
        unit = rec.get("u", bu)
        out.append(Record(i, bn, bn + n, unit if isinstance(unit, str) else None,
                          _seconds(t), value, field, total))
    return out


def _add(base: object, x: object) -> object:
    """``base + x`` for numbers; else whichever is not a number, for the pipeline to judge."""
    if base is None:
        return x
    if is_number(base) and is_number(x):
        try:
            return base + x
        except OverflowError:  # a float and an integer too large for one
            return x if type(x) is int else base  # for the pipeline to judge
    return x if not is_number(x) else base


def _seconds(t: object) -> object:
    """A resolved time as float seconds; a number too large for a float stays as
    it is, for the pipeline to judge (``bad_timestamp``)."""
    if not is_number(t):
        return t
    try:
        return float(t)
    except OverflowError:
        return t


def _b64url(text: str, i: int) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise PayloadError("invalid_senml", f"SenML record {i}: vd is not base64url: {exc}"
                           ) from exc


def encode_json(pack: list[dict]) -> bytes:
    """A pack as compact SenML JSON."""
    return json.dumps(pack, separators=(",", ":")).encode()


def encode_cbor(pack: list[dict]) -> bytes:
    """A pack as SenML CBOR with integer labels."""
    return cbor2.dumps([{LABELS.get(k, k): v for k, v in rec.items()} for rec in pack])
