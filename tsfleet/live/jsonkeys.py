"""A key given twice in one JSON object: ``duplicate_field``, as for file ingest.

``json.loads`` (and orjson, msgspec) keep the last value of a repeated key, so
``{"tempF": 68, "tempF": 99}`` would be stored as 99 while the same object in a
JSON-lines file is quarantined (``duplicate_field``, see
:mod:`tsfleet.ingest.files`). :func:`check_unique_keys` makes the live path refuse it
the same way, at a cost that is small beside decoding: the payload is decoded once,
as before, and only read again, with an ``object_pairs_hook`` that sees every key,
when one of two counts says that a key may have been lost:

- Colons, for a SenML pack: every key of an object is followed by exactly one colon
  and no colon is outside a string otherwise, so the colons bound the keys given.
  When the records' keys (``len`` of each) reach that bound, none was repeated. In a
  text without a backslash the colons of the first record's text values (a base
  name such as ``urn:dev:mac:0024befffe804ff1:``) are inside strings and come off the
  bound.
- Quotes, for the rest: in a text without a backslash (so without an escape) every
  ``"`` opens or closes a key or a text value. Written again, the decoded value
  holds two quotes per key and text value it kept; a repeated key lost at least its
  own two, so the counts differ. The writer is C (orjson, else the standard
  library), so the cost is a fraction of the decoding's whatever the nesting.

Both counts hold in every encoding ``json.loads`` reads (UTF-16 and UTF-32 bytes
may only add colons and quotes, which sends the payload to the second reading).
"""

from __future__ import annotations

import json

from tsfleet.live.errors import PayloadError


def std_dumps(obj: object) -> bytes:
    """The standard library's writer, used when orjson is not installed."""
    return json.dumps(obj, separators=(",", ":"), check_circular=False).encode()


try:
    import orjson

    _dumps = orjson.dumps
except ImportError:  # pragma: no cover - the test extra installs orjson
    _dumps = std_dumps


class _Repeated(Exception):
    def __init__(self, key: str):
        self.key = key


def _unique(pairs: list[tuple[str, object]]) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Repeated(k)
            seen.add(k)
    return d


def _skip(_text: str) -> int:  # numbers are not needed to find a key: no conversion
    return 0


def _pack_clear(pack: list, payload: bytes) -> bool:
    """True when the colons show that no key of a SenML pack's records was repeated."""
    n = 0
    for rec in pack:
        if type(rec) is dict:
            n += len(rec)
    colons = payload.count(b":")
    if n != colons and n and type(pack[0]) is dict and b"\\" not in payload:
        for v in pack[0].values():  # the base name's colons: "bn": "urn:dev:mac:..."
            if type(v) is str:
                colons -= v.count(":")
    return n == colons


def may_repeat(obj: object, payload: bytes) -> bool:
    """False when ``obj``, decoded from the JSON ``payload``, surely lost no repeated key."""
    if type(obj) is list:
        if _pack_clear(obj, payload):
            return False
    elif type(obj) is not dict:
        return False  # a number, a text: no object, no key
    if b"\\" in payload:
        return True  # an escape may write a quote inside a text
    try:
        text = _dumps(obj)
    except (TypeError, ValueError, OverflowError, RecursionError):  # e.g. a 70-bit integer
        return True
    return payload.count(b'"') != text.count(b'"')


def repeated_key(payload: bytes) -> str | None:
    """The first key given twice in an object of ``payload`` (valid JSON), or None."""
    try:
        json.loads(payload, object_pairs_hook=_unique, parse_int=_skip, parse_float=_skip,
                   parse_constant=_skip)
    except _Repeated as exc:
        return exc.key
    except RecursionError:
        raise PayloadError("invalid_json", "payload is not valid JSON: nested too deeply"
                           ) from None
    except ValueError as exc:  # valid to another parser (orjson), not to the standard one
        raise PayloadError("invalid_json", f"payload is not valid JSON: {exc}") from None
    return None


def check_unique_keys(obj: object, payload: bytes) -> None:
    """Raise ``duplicate_field`` when an object of ``payload`` gives a key twice
    (``obj`` is what ``payload`` decoded to)."""
    if may_repeat(obj, payload):
        key = repeated_key(payload)
        if key is not None:
            raise PayloadError("duplicate_field", f"field {key[:200]} appears more than once "
                               "in the object")
