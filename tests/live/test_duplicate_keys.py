"""A JSON key given twice on the live path is quarantined as ``duplicate_field``, as in a
JSON-lines file: through a real mosquitto, in SenML and vendor JSON, the rest of the
stream landing; the cheap count that spares the common payload the exact check never
lets a repeated key through (Hypothesis, against ``object_pairs_hook``). A CBOR map
giving a key twice (SenML+CBOR, LwM2M+CBOR, a vendor object in CBOR) likewise."""

from __future__ import annotations

import base64
import json

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.live import pack_payload
from tests.live.live_support import (
    T0,
    decoder,
    senml_json,
    serve_and_send,
)
from tsfleet import Fleet
from tsfleet.live import jsonkeys
from tsfleet.live.chirpstack import ChirpStack
from tsfleet.live.errors import PayloadError
from tsfleet.live.senml import LABELS
from tsfleet.live.server import known_metrics
from tsfleet.live.tts import TheThingsStack
from tsfleet.live.writer import Envelope

DEC = decoder()
#: an Acme TH-200 message as the device sends it, with ``tempF`` given twice
ACME_TWICE = (b'{"vendor":"acme","dev":"ac-1","ts":%d,"tempF":68.0,"bat_mv":3300,'
              b'"tempF":212.0}' % T0)
SENML_TWICE = b'[{"bn":"th-9/","bt":%d,"n":"temp","u":"Cel","v":20.0,"v":99.0}]' % T0


def _reason(payload: bytes, **kw) -> tuple[str, str] | None:
    try:
        DEC.decode(payload, **kw)
    except PayloadError as exc:
        return exc.reason, exc.detail
    return None


def test_a_repeated_key_is_refused_with_the_reason_file_ingest_gives(tmp_path):
    # the truth: file ingest of the same object as a JSON line
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"device_id":"a","observed_at":"2026-05-28T20:26:40Z",'
                     b'"temperature_c":20,"temperature_c":99}\n')
    with Fleet(memory=True) as f:
        f.ingest("readings", path)
        (file_reason,) = f.query("select reason, detail from quarantine")
    assert file_reason == {"reason": "duplicate_field",
                           "detail": "field temperature_c appears more than once in the object"}
    assert _reason(ACME_TWICE) == ("duplicate_field",
                                   "field tempF appears more than once in the object")
    assert _reason(SENML_TWICE) == ("duplicate_field",
                                    "field v appears more than once in the object")
    # nested, spaced, pretty-printed, behind colons in text: still found
    for payload, key in [
        (b'{"model":"VX-3","id":"v-1","samples":[{"t_ms":1,"acc":5,"acc":6}]}', "acc"),
        (b'{"vendor" : "acme", "dev" : "a:b", "tempF" : 1, "tempF" : 2}', "tempF"),
        (json.dumps({"vendor": "acme", "ts": "12:00:00"}, indent=2).encode()[:-2]
         + b',\n  "ts": "13:00:00"\n}', "ts"),
        (b'[{"bn":"urn:dev:mac:0024befffe804ff1:","n":"temp","n":"hum","v":1}]', "n"),
        # escapes that would balance the counts: two quotes written as \u0022 in a text
        # (four quote bytes when written again), a colon as \u003a in the base name
        (b'{"vendor":"acme","x":"\\u0022\\u0022","tempF":1,"tempF":2}', "tempF"),
        (b'[{"bn":"th-9\\u003a:","n":"temp","n":"hum","v":1}]', "n"),
    ]:
        assert _reason(payload) == ("duplicate_field",
                                    f"field {key} appears more than once in the object")


def test_the_same_payloads_without_the_repeat_decode_as_before():
    acme = DEC.decode(ACME_TWICE.replace(b',"tempF":212.0', b""))
    assert dict(zip(acme.metric, acme.value, strict=True)) == {
        "temperature_c": pytest.approx(20.0), "battery_voltage_v": pytest.approx(3.3)}
    assert DEC.decode(SENML_TWICE.replace(b',"v":99.0', b"")).value == [20.0]
    # the same key in two objects is no repeat
    two = DEC.decode(b'[{"bn":"th-9/","bt":%d,"n":"temp","u":"Cel","v":1},'
                     b'{"n":"temp","u":"Cel","v":2,"t":1}]' % T0)
    assert two.value == [1.0, 2.0]


def test_network_server_events_with_a_repeated_key_are_refused():
    """ChirpStack and The Things Stack events in JSON: the general path (orjson) checks
    them as the decoder does (a key given twice by the codec's object, or anywhere)."""
    pytest.importorskip("orjson")
    with Fleet(memory=True) as f:
        known = known_metrics(f)
    cs, tts = ChirpStack(known), TheThingsStack(known)
    up = (b'{"time":"2026-05-28T20:26:40Z","deviceInfo":{"devEui":"70b3d57ed0000001"},'
          b'"fCnt":7,"object":{"temperature_c":20.5,"temperature_c":99.0},'
          b'"rxInfo":[{"gatewayId":"gw-1","rssi":-90,"snr":7.5}]}')
    tts_up = (b'{"end_device_ids":{"device_id":"th-1"},"uplink_message":{"f_cnt":1,'
              b'"decoded_payload":{"humidity_pct":40,"humidity_pct":41},'
              b'"rx_metadata":[{"gateway_ids":{"gateway_id":"gw-1"},"rssi":-90}]}}')
    for dec, topic, payload, key in [
            (cs, "application/a/device/70b3d57ed0000001/event/up", up, "temperature_c"),
            (cs, "application/a/device/70b3d57ed0000001/event/up",
             up.replace(b'"fCnt":7', b'"fCnt":7,"fCnt":8').replace(b',"temperature_c":99.0',
                                                                   b""), "fCnt"),
            (tts, "v3/app/devices/th-1/up", tts_up, "humidity_pct")]:
        env = Envelope("mqtt", topic, payload, T0)
        dec.decode_into(env)
        assert env.decoded is None
        assert (env.reject.reason, env.reject.detail) == (
            "duplicate_field", f"field {key} appears more than once in the object")
    env = Envelope("mqtt", "v3/app/devices/th-1/up", tts_up.replace(b',"humidity_pct":41', b""),
                   T0)
    tts.decode_into(env)
    assert list(zip(env.decoded.metric, env.decoded.value, strict=True)) == [
        ("humidity_pct", 40.0)]


def test_the_common_payloads_are_cleared_by_the_count_alone():
    """What keeps the check off the hot path: the bench's SenML pack, a vendor object
    with colons in its text, and a pretty-printed one never need the second read."""
    for payload in (pack_payload("b-00001", T0 + 0.123, 50), pack_payload("b-1", T0, 1),
                    b'{"vendor":"acme","dev":"urn:dev:1","ts":"2026-05-28T20:26:40Z"}',
                    json.dumps({"vendor": "acme", "dev": "ac-1", "tempF": 68.0}).encode(),
                    b'[{"bn":"urn:dev:mac:0024befffe804ff1:","n":"temp","u":"Cel","v":1}]',
                    b'{"time":"2026-05-28T20:26:40.123456Z","deviceInfo":{"devEui":"70b3",'
                    b'"tags":{"site":"north"}},"fCnt":7,"object":{"temperature_c":21.5},'
                    b'"rxInfo":[{"gatewayId":"gw-1","rssi":-90,"location":{}},'
                    b'{"gatewayId":"gw-2","rssi":-97}]}'):
        assert not jsonkeys.may_repeat(json.loads(payload), payload), payload


_key = st.sampled_from(["a", "b", "v", "n", "tempF", 'q"', "k:", "é"])
_scalar = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["x", "12:00", 'say ":"', " : ", "\u00e9", '""', "::"]),
                    st.none(), st.booleans())


def _pairs(children):  # an object as a list of pairs: the same key may come twice
    return st.lists(st.tuples(_key, children), max_size=5).map(lambda p: ("obj", p))


_tree = st.recursive(_scalar, lambda c: st.one_of(st.lists(c, max_size=4), _pairs(c)),
                     max_leaves=20)
#: a SenML-like pack: records of text and number values, the base name's colons first
_pack = st.lists(st.lists(st.tuples(st.sampled_from(["bn", "n", "u", "v", "t"]), _scalar),
                          max_size=5).map(lambda p: ("obj", p)), min_size=1, max_size=4)


def _string(text: str, draw) -> str:
    """A JSON string, each character written as itself or as a ``\\uXXXX`` escape (a
    quote or a colon escaped so is no quote or colon byte of the text)."""
    return '"' + "".join(f"\\u{ord(c):04x}" if draw(st.booleans()) else json.dumps(c)[1:-1]
                         for c in text) + '"'


def _text(node, ws: list[str], draw) -> str:
    """JSON text of a tree, with the whitespace ``draw`` picks between tokens."""
    sp = lambda: ws[draw(st.integers(0, len(ws) - 1))]  # noqa: E731
    if isinstance(node, tuple) and node[0] == "obj":
        items = [f"{sp()}{_string(k, draw)}{sp()}:{sp()}{_text(v, ws, draw)}{sp()}"
                 for k, v in node[1]]
        return "{" + ",".join(items) + "}"
    if isinstance(node, list):
        return "[" + ",".join(sp() + _text(v, ws, draw) + sp() for v in node) + "]"
    return _string(node, draw) if isinstance(node, str) else json.dumps(node)


def _first_repeat(node) -> bool:
    if isinstance(node, tuple) and node[0] == "obj":
        keys = [k for k, _ in node[1]]
        return len(set(keys)) != len(keys) or any(_first_repeat(v) for _, v in node[1])
    if isinstance(node, list):
        return any(_first_repeat(v) for v in node)
    return False


@given(tree=st.one_of(_tree, _pack), data=st.data(),
       encoding=st.sampled_from(["utf-8", "utf-8", "utf-16"]))
@settings(max_examples=1000, deadline=None)
def test_a_repeated_key_is_never_missed(tree, data, encoding):
    """Whatever the whitespace, nesting, escapes, colons and quotes in texts and keys,
    and with either writer (orjson, or the standard library's when it is missing)."""
    ws = data.draw(st.sampled_from([[""], ["", " "], ["", "\n  ", "\t", "\r\n"]]))
    text = _text(tree, ws, data.draw)
    payload = text.encode(encoding)
    obj = json.loads(payload)
    repeated = _first_repeat(tree)
    for dumps in (jsonkeys._dumps, jsonkeys.std_dumps):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(jsonkeys, "_dumps", dumps)
            if repeated:
                assert jsonkeys.may_repeat(obj, payload), text
                with pytest.raises(PayloadError) as exc:
                    jsonkeys.check_unique_keys(obj, payload)
                assert exc.value.reason == "duplicate_field"
            else:
                jsonkeys.check_unique_keys(obj, payload)  # no false alarm either


@pytest.mark.network
def test_repeated_keys_sent_through_mosquitto_are_quarantined_and_the_rest_lands(broker,
                                                                                  tmp_path):
    db = str(tmp_path / "live.duckdb")
    good = senml_json([{"bn": "th-1/", "bt": T0, "n": "temp", "u": "Cel", "v": 21.0}])
    serve_and_send(db, broker, [("fleet/ac-1/acme-th200", ACME_TWICE),
                                ("fleet/th-9/senml", SENML_TWICE), ("fleet/th-1/senml", good)],
                   client_id="t-dupkeys")
    with Fleet(db, read_only=True) as f:
        assert f.query("select device_id, metric, value from readings") == [
            {"device_id": "th-1", "metric": "temperature_c", "value": 21.0}]
        rows = f.query("select kind, reason, detail, raw from quarantine order by detail")
        assert [(r["kind"], r["reason"], r["detail"]) for r in rows] == [
            ("payload", "duplicate_field", "field tempF appears more than once in the object"),
            ("payload", "duplicate_field", "field v appears more than once in the object")]
        assert sorted(json.loads(r["raw"])["payload"] for r in rows) == sorted(
            p.decode() for p in (ACME_TWICE, SENML_TWICE))  # kept as received


def cbor_map(*pairs) -> bytes:
    """A CBOR map of ``pairs`` as written, the same key any number of times (cbor2's
    encoder, given a dict, cannot repeat one)."""
    assert len(pairs) < 24
    return bytes([0xA0 + len(pairs)]) + b"".join(cbor2.dumps(k) + cbor2.dumps(v)
                                                  for k, v in pairs)


def cbor_array(*items: bytes) -> bytes:
    assert len(items) < 24
    return bytes([0x80 + len(items)]) + b"".join(items)


def senml_cbor_record(*pairs) -> bytes:
    """A SenML+CBOR record (RFC 8428, section 6: integer labels), labels named."""
    return cbor_map(*[(LABELS[k], v) for k, v in pairs])


#: SenML+CBOR: ``v`` (label 2) given twice
SENML_CBOR_TWICE = cbor_array(senml_cbor_record(
    ("bn", "th-9/"), ("bt", T0), ("n", "temp"), ("u", "Cel"), ("v", 20.0), ("v", 99.0)))
#: LwM2M+CBOR: battery level /3/0/9, its second record giving ``n`` twice
LWM2M_CBOR_TWICE = cbor_array(
    senml_cbor_record(("bn", "/3/0/"), ("bt", T0), ("n", "9"), ("v", 87)),
    senml_cbor_record(("n", "7"), ("v", 3612), ("n", "10")))
ACME_PAIRS = (("vendor", "acme"), ("dev", "ac-2"), ("ts", T0), ("tempF", 68.0),
              ("bat_mv", 3300))
#: an Acme TH-200 object in CBOR, ``tempF`` given twice
ACME_CBOR_TWICE = cbor_map(*ACME_PAIRS, ("tempF", 212.0))


def test_a_repeated_cbor_map_key_is_refused_as_a_repeated_json_key_is():
    assert _reason(SENML_CBOR_TWICE, fmt="senml-cbor") == (
        "duplicate_field", "field v (label 2) appears more than once in the object")
    assert _reason(SENML_CBOR_TWICE) == (  # told by its first byte, no topic format
        "duplicate_field", "field v (label 2) appears more than once in the object")
    assert _reason(LWM2M_CBOR_TWICE, fmt="lwm2m-cbor") == (
        "duplicate_field", "field n (label 0) appears more than once in the object")
    assert _reason(ACME_CBOR_TWICE) == ("duplicate_field",
                                        "field tempF appears more than once in the object")
    # a label given as its number and as its name is the same field given twice
    both = cbor_array(cbor_map((-2, "th-9/"), (-3, T0), (0, "temp"), (2, 20.0), ("v", 99.0)))
    assert _reason(both) == ("duplicate_field", "field v appears more than once in the "
                             "object (as its label and its name)")
    # a payload broken otherwise too keeps the reason and detail it had
    assert _reason(SENML_CBOR_TWICE + b"\x00") == (
        "invalid_cbor", "payload is not valid CBOR: 1 bytes follow the data item that ends at "
        f"byte {len(SENML_CBOR_TWICE)}")
    assert _reason(SENML_CBOR_TWICE[:-1])[0] == "invalid_cbor"


def test_the_same_cbor_payloads_without_the_repeat_decode_as_before():
    one = DEC.decode(cbor_array(senml_cbor_record(("bn", "th-9/"), ("bt", T0), ("n", "temp"),
                                                  ("u", "Cel"), ("v", 20.0))))
    assert (one.metric, one.value) == (["temperature_c"], [20.0])
    lwm2m = DEC.decode(cbor_array(
        senml_cbor_record(("bn", "/3/0/"), ("bt", T0), ("n", "9"), ("v", 87)),
        senml_cbor_record(("n", "7/0"), ("v", 3612))), fmt="lwm2m-cbor", topic_device="lw-1")
    assert lwm2m.value == [87.0, 3612.0]
    acme = DEC.decode(cbor_map(*ACME_PAIRS))
    assert dict(zip(acme.metric, acme.value, strict=True)) == {
        "temperature_c": pytest.approx(20.0), "battery_voltage_v": pytest.approx(3.3)}
    # the same key in two maps is no repeat; an unknown integer label is ignorable
    two = DEC.decode(cbor_array(
        cbor_map((-2, "th-9/"), (-3, T0), (0, "temp"), (1, "Cel"), (2, 1.0), (99, "x")),
        cbor_map((0, "temp"), (1, "Cel"), (2, 2.0), (6, 1))))
    assert two.value == [1.0, 2.0]


@pytest.mark.network
def test_repeated_cbor_map_keys_sent_through_mosquitto_are_quarantined_and_the_rest_lands(
        broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    good = cbor_array(senml_cbor_record(("bn", "th-1/"), ("bt", T0), ("n", "temp"),
                                        ("u", "Cel"), ("v", 21.0)))
    serve_and_send(db, broker, [("fleet/th-9/senml-cbor", SENML_CBOR_TWICE),
                                ("fleet/lw-1/lwm2m-cbor", LWM2M_CBOR_TWICE),
                                ("fleet/ac-2/acme-th200", ACME_CBOR_TWICE),
                                ("fleet/th-1/senml-cbor", good)], client_id="t-dupkeys-cbor")
    with Fleet(db, read_only=True) as f:
        assert f.query("select device_id, metric, value from readings") == [
            {"device_id": "th-1", "metric": "temperature_c", "value": 21.0}]
        rows = f.query("select kind, reason, detail, raw from quarantine order by detail")
        assert [(r["kind"], r["reason"], r["detail"]) for r in rows] == [
            ("payload", "duplicate_field", "field n (label 0) appears more than once in the "
             "object"),
            ("payload", "duplicate_field", "field tempF appears more than once in the object"),
            ("payload", "duplicate_field", "field v (label 2) appears more than once in the "
             "object")]
        assert sorted(json.loads(r["raw"])["payload"] for r in rows) == sorted(
            "base64:" + base64.b64encode(p).decode()
            for p in (LWM2M_CBOR_TWICE, ACME_CBOR_TWICE, SENML_CBOR_TWICE))  # as received
