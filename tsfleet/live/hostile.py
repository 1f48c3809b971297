"""Hostile payloads for ``tsfleet serve``, from a seeded generator: for tests,
benchmarks and trials (like :mod:`tsfleet.live.broker`).

Each payload is one thing a careless or hostile sender does: broken or
truncated JSON and CBOR, random and bit-flipped bytes, lone UTF-16 surrogates
in every text that reaches a column, integers of thousands of digits, NaN and
infinities, deep nesting, trailing bytes after CBOR, control characters,
names of kilobytes, wrong types, must-understand labels, LwM2M paths with
absurd values, vendor objects with poisoned fields, oversized payloads.
Devices named here start with ``hz-``, never ``good-``: a test counts the
``good-`` readings exactly while hostile payloads flow around them.

>>> import random
>>> h = next(hostile(random.Random(1), max_payload=4096))
>>> sorted(h) == ["cf", "fmt", "kind", "payload"]
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import cbor2

from tsfleet.live.senml import encode_cbor, encode_json

T0 = 1_780_000_000
SURROGATE = "\ud800"


def good_pack(device: str, i: int, per: int = 5) -> list[dict]:
    """``per`` temperature readings of ``device``, unique for each ``i``."""
    pack = [{"bn": f"{device}/", "bt": T0 + i * 60, "n": "temp", "u": "Cel", "v": 20.0, "t": 0}]
    pack += [{"n": "temp", "u": "Cel", "v": 20.0 + k / 10, "t": k} for k in range(1, per)]
    return pack


def _dumps(obj: object) -> bytes:
    # ensure_ascii: a lone surrogate travels as the escape \ud800, valid JSON text
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def hostile(rng: random.Random, max_payload: int = 256 * 1024) -> Iterator[dict]:
    """Endless hostile payloads: dicts of ``kind``, ``payload`` (bytes), ``fmt``
    (topic format segment) and ``cf`` (CoAP content format)."""
    kinds = [k for k in globals() if k.startswith("_h_")]
    while True:
        name = rng.choice(kinds)
        payload, fmt, cf = globals()[name](rng, max_payload)
        yield {"kind": name[3:], "payload": payload, "fmt": fmt, "cf": cf}


def _dev(rng: random.Random) -> str:
    return f"hz-{rng.randrange(50)}"


def _pack(rng: random.Random, n: int = 3) -> list[dict]:
    return good_pack(_dev(rng), rng.randrange(10**6), n)


def _h_truncated_json(rng, _):
    p = encode_json(_pack(rng))
    return p[:rng.randrange(len(p))], "senml", 110


def _h_random_bytes(rng, _):
    return rng.randbytes(rng.randrange(0, 300)), rng.choice(["senml", "senml-cbor", "x"]), \
        rng.choice([110, 112, 50, 60])


def _h_flipped_json(rng, _):
    p = bytearray(encode_json(_pack(rng)))
    for _ in range(rng.randrange(1, 4)):
        p[rng.randrange(len(p))] = rng.randrange(256)
    return bytes(p), "senml", 110


def _h_flipped_cbor(rng, _):
    p = bytearray(encode_cbor(_pack(rng)))
    for _ in range(rng.randrange(1, 4)):
        p[rng.randrange(len(p))] = rng.randrange(256)
    return bytes(p), "senml-cbor", 112


def _h_surrogate_senml(rng, _):
    pack = _pack(rng, 2)
    label = rng.choice(["bn", "n", "u", "vs", "bu"])
    if label == "bn":
        pack[0]["bn"] = f"hz-{SURROGATE}/"
    elif label == "vs":
        pack[1] = {"n": "state", "vs": f"on{SURROGATE}"}
    elif label == "bu":
        pack[0]["bu"] = SURROGATE
    else:
        pack[1][label] = f"x{SURROGATE}"
    return _dumps(pack), "senml", 110


def _h_surrogate_vendor(rng, _):
    obj = {"vendor": "acme", "dev": _dev(rng), "ts": T0 + rng.randrange(10**6), "tempF": 70.0}
    where = rng.choice(["dev", "ts", "field", "value"])
    if where == "dev":
        obj["dev"] = f"hz{SURROGATE}"
    elif where == "ts":
        obj["ts"] = f"2026{SURROGATE}"
    elif where == "field":
        obj[f"t{SURROGATE}"] = 1.0
    else:
        obj["extra"] = SURROGATE
    return _dumps(obj), "acme-th200", 50


def _h_huge_integer(rng, _):
    digits = rng.choice([30, 400, 5000])
    pack = _pack(rng, 2)
    if digits > 4300:  # Python cannot write it as text: write it by hand
        text = encode_json(pack).replace(b"20.0", b"9" * digits, 1)
        return text, "senml", 110
    pack[rng.randrange(2)][rng.choice(["v", "t"])] = int("9" * digits) * rng.choice([1, -1])
    if rng.random() < 0.5:
        return encode_cbor(pack), "senml-cbor", 112
    return _dumps(pack), "senml", 110


def _h_cbor_bignum(rng, _):
    pack = _pack(rng, 2)
    pack[1]["v"] = 1 << rng.choice([70, 1100, 20_000])
    pack[0]["bt"] = 1 << rng.choice([40, 1100])
    return encode_cbor(pack), "senml-cbor", 112


def _h_non_finite(rng, _):
    pack = _pack(rng, 2)
    pack[1][rng.choice(["v", "t"])] = rng.choice([float("nan"), float("inf"), float("-inf")])
    return _dumps(pack), "senml", 110


def _h_deep_nesting(rng, _):
    depth = rng.choice([500, 5000, 50_000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth, "senml", 110
    return b"\x81" * depth + b"\x00", "senml-cbor", 112


def _h_cbor_trailing(rng, _):
    return encode_cbor(_pack(rng)) + rng.randbytes(rng.randrange(1, 20)), "senml-cbor", 112


def _h_control_chars(rng, _):
    pack = _pack(rng, 2)
    pack[0]["bn"] = f"hz-\x00\x1b[31m\r\n{rng.randrange(99)}/"
    pack[1]["n"] = "t\x07"
    return _dumps(pack), "senml", 110


def _h_long_names(rng, _):
    pack = _pack(rng, 2)
    pack[1]["n"] = "n" * rng.choice([300, 10_000])
    pack[1]["u"] = "u" * rng.choice([1, 2000])
    return _dumps(pack), "senml", 110


def _h_wrong_types(rng, _):
    pack = _pack(rng, 2)
    label, value = rng.choice([("bn", 17), ("n", ["a"]), ("v", {"x": 1}), ("t", "soon"),
                               ("bt", [1]), ("u", 3), ("vb", "yes"), ("vd", "***"),
                               ("s", "many"), ("bver", "ten")])
    pack[rng.randrange(2)][label] = value
    return _dumps(pack), "senml", 110


def _h_must_understand(rng, _):
    pack = _pack(rng, 2)
    pack[1]["secret_"] = 1
    return _dumps(pack), "senml", 110


def _h_not_a_pack(rng, _):
    return _dumps(rng.choice([17, "text", None, [1, 2], [[]], {"a": 1}, [{"v": 1, "vs": "x"}],
                              [{"n": "t"}], [{"bver": 99, "n": "t", "v": 1}]])), "senml", 110


def _h_lwm2m_absurd(rng, _):
    dev = _dev(rng)
    recs = [{"bn": f"{dev}/3/0/", "bt": T0 + rng.randrange(10**6), "n": "7/99999999999999999999",
             "v": 3600},
            {"n": "9", "v": rng.choice([-5, 1e300, "full", 10**30])},
            {"n": "20", "v": rng.choice([99, -1, 2.5])},
            {"bn": f"{dev}/5/0/", "n": "5", "v": rng.choice([42, "x", 1e9])},
            {"n": "3", "vs": rng.choice(["x" * 3000, "", SURROGATE])}]
    return _dumps(recs), "lwm2m", 110


def _h_vendor_bad(rng, _):
    obj = rng.choice([{"vendor": "acme", "dev": _dev(rng), "ts": "yesterday", "tempF": "hot"},
                      {"vendor": "acme", "ts": T0, "tempF": 1e308 * 10},
                      {"vendor": "nobody", "x": 1},
                      {"vendor": "acme", "dev": ["a"], "ts": {"t": 1}, "tempF": [1, 2]},
                      {"vendor": "acme", "dev": _dev(rng), "ts": 10**400, "tempF": 10**400}])
    if rng.random() < 0.3:
        return cbor2.dumps(obj), "acme-th200", 60
    return _dumps(obj), "acme-th200", 50


def _h_unmapped_only(rng, _):
    pack = [{"bn": f"{_dev(rng)}/", "bt": T0 + rng.randrange(10**6), "n": "mystery", "u": "furlong",
             "v": 1.0}, {"n": "state", "vs": "on"}, {"n": "sum", "s": 3}]
    return _dumps(pack), "senml", 110


def _h_empty(rng, _):
    return rng.choice([b"", b" ", b"\n"]), rng.choice(["senml", "senml-cbor", ""]), \
        rng.choice([110, 112])


def _h_oversized(rng, max_payload):
    n = max_payload + rng.randrange(1, max_payload)
    return b"[" + b" " * (n - 2) + b"]", "senml", 110


def _h_absurd_time(rng, _):
    pack = _pack(rng, 2)
    pack[0]["bt"] = rng.choice([1e300, -1e300, 2**62, -(2**62), 1e11, 1e15, -1e14, 10**15])
    return _dumps(pack), "senml", 110


def _h_wrong_content_format(rng, _):
    return encode_json(_pack(rng)), rng.choice(["text", "senml"]), rng.choice([0, 41, 9999])
