"""The ChirpStack uplink's hot path (issue #25, 20,000 uplinks/s) gives what the
mapping says: a codec object of canonical metric names straight to readings, numeric
fields given as text or of the wrong type judged as before, the device's facts once
per change, the answering gateway, and a sealed result the writer can store."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.live_support import T0
from tsfleet import Fleet
from tsfleet.live.chirpstack import ChirpStack
from tsfleet.live.errors import PayloadError
from tsfleet.live.lorawan import downlink_gateway
from tsfleet.live.server import known_metrics
from tsfleet.live.writer import Envelope

DEV = "70b3d57ed0000001"
TOPIC = f"application/a/device/{DEV}/event/"
TIME = "2026-05-28T20:26:40.5Z"  # T0 + 0.5


@pytest.fixture(scope="module")
def known():
    with Fleet(memory=True) as f:
        return known_metrics(f)


def uplink(**fields) -> bytes:
    msg = {"time": TIME, "deviceInfo": {"devEui": DEV, "deviceName": "th-1",
                                        "deviceProfileName": "no-such-profile",
                                        "tags": {"site": "north"}},
           "fCnt": 7, "fPort": 2, "dr": 5,
           "rxInfo": [{"gatewayId": "gw-1", "rssi": -90, "snr": 7.5}]}
    msg.update(fields)
    return json.dumps(msg).encode()


def _flat(obj: dict, prefix: str = ""):
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6),
                    st.text(max_size=5), st.booleans(), st.none(),
                    st.lists(st.integers(0, 9), max_size=2))


@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_an_object_without_profile_maps_canonical_names_and_keeps_the_rest(known, data):
    """Fields named like a canonical metric with a number or text become readings at the
    event time; every other field (another name, a bool, null, a list, a nested object's
    fields under their dotted names) is unmapped ``no_profile_mapping`` at its position."""
    names = st.sampled_from(sorted(known)[:6] + ["x_count", "x_state"])
    nested = st.dictionaries(names, _values, max_size=2)
    obj = data.draw(st.dictionaries(names, st.one_of(_values, nested), max_size=6))
    out = ChirpStack(known).decode(TOPIC + "up", uplink(object=obj), 0.0)
    expected_readings, expected_unmapped = [], []
    for i, (key, raw) in enumerate(_flat(obj)):
        if key in known and type(raw) in (int, float, str):
            expected_readings.append((key, float(raw) if type(raw) is not str else raw))
        else:
            expected_unmapped.append((i, key, "no_profile_mapping"))
    assert [(m, type(v), v) for m, v in zip(out.metric, out.value, strict=True)] == \
        [(m, type(v), v) for m, v in expected_readings]
    assert set(out.device_id) <= {DEV} and set(out.observed_at) <= {T0 + 0.5}
    assert [(u.item, u.field, u.reason) for u in out.unmapped] == expected_unmapped


@pytest.mark.parametrize(("rx", "counters", "heard", "uplink_row"), [
    ({"rssi": -90, "snr": 7.5}, {}, (-90, 7.5), (7, 2, 5)),
    ({"rssi": "-97"}, {"fCnt": "12", "dr": "3"}, (-97.0, 0.0), (12, 2, 3)),  # text: accepted
    ({"snr": None}, {"fCnt": 12.0, "fPort": None}, (None, None), (12, None, 5)),
])
def test_numbers_given_as_text_or_left_out_are_read_as_before(known, rx, counters, heard,
                                                              uplink_row):
    out = ChirpStack(known).decode(
        TOPIC + "up", uplink(rxInfo=[{"gatewayId": "gw-1", **rx}], **counters), 0.0)
    (row,) = out.rows_of("connections")
    assert (row["rssi_dbm"], row["snr_db"]) == heard
    (up,) = out.rows_of("lorawan_uplinks")
    assert (up["f_cnt"], up["f_port"], up["dr"]) == uplink_row


@pytest.mark.parametrize(("rx", "counters", "field"), [
    ({"rssi": True}, {}, "rssi"), ({"rssi": -90, "snr": "high"}, {}, "snr"),
    ({}, {"fCnt": "many"}, "fCnt"), ({}, {"fPort": True}, "fPort"), ({}, {"dr": [5]}, "dr"),
])
def test_a_field_of_the_wrong_type_quarantines_the_event_as_bad_field(known, rx, counters,
                                                                       field):
    env = Envelope("mqtt", TOPIC + "up",
                   uplink(rxInfo=[{"gatewayId": "gw-1", **rx}], **counters), T0)
    ChirpStack(known).decode_into(env)
    assert env.decoded is None and env.reject.reason == "bad_field"
    assert env.reject.detail.startswith(f"{field} must be a number")


def test_the_device_facts_are_emitted_once_per_change(known):
    cs = ChirpStack(known)
    facts = [cs.decode(TOPIC + "up", body, 0.0).facts.get("lorawan_devices", []) for body in (
        uplink(), uplink(fCnt=8),  # the same facts: once
        uplink(deviceInfo={"devEui": DEV, "deviceName": "th-1 (hall 2)"}))]  # renamed
    assert [len(f) for f in facts] == [1, 0, 1]
    assert facts[2][0]["device_name"] == "th-1 (hall 2)" and facts[2][0]["tags"] is None
    status = json.dumps({"time": TIME, "deviceInfo": {"devEui": DEV, "deviceName":
                                                      "th-1 (hall 2)"},
                         "externalPowerSource": True}).encode()
    mains = [cs.decode(TOPIC + "status", status, 0.0).facts.get("lorawan_devices", [])
             for _ in range(2)]
    assert [[r["is_mains"] for r in f] for f in mains] == [[True], []]


def test_a_decoded_uplink_is_sealed_for_the_writer(known):
    env = Envelope("mqtt", TOPIC + "up", uplink(object={"temperature_c": 21.5}), T0)
    ChirpStack(known).decode_into(env)
    d = env.decoded
    assert d.n_rows == 1 + 1 + 1 + 1  # a reading, a heard connection, the uplink, facts
    assert d.rows_of("connections")[0]["gateway_id"] == "gw-1"
    assert d.observed_at == (T0 + 0.5,) and d.value == (21.5,)
    with pytest.raises(AttributeError):
        d.add_reading(DEV, T0, "temperature_c", 1.0)


_gateway = st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                     st.one_of(st.none(), st.integers(-130, -30)),
                     st.one_of(st.none(), st.sampled_from([-20.0, 0.0, 7.5, 9.25])))


@given(st.lists(_gateway, max_size=5))
def test_the_answering_gateway_has_the_best_snr_then_rssi_and_ties_keep_the_first(gateways):
    best = max(gateways, key=lambda g: (-99.0 if g[2] is None else g[2],
                                        -999.0 if g[1] is None else g[1]), default=None)
    assert downlink_gateway(gateways) == (best[0] if best else None)


def test_an_unknown_topic_is_refused_each_time(known):
    cs = ChirpStack(known)
    for _ in range(2):
        with pytest.raises(PayloadError, match="not a ChirpStack event topic"):
            cs.decode("application/a/device/x/up", b"{}", 0.0)


class _GeneralPathOnly(ChirpStack):
    """The decoder without its common-uplink paths (from the event's dict, and typed):
    the reference it must equal."""

    def _up_common(self, msg, device, t, profile):
        return None

    def _up_typed(self, ident, payload, now):
        return None


def _decoded_or_reject(cs: ChirpStack, body: bytes):
    env = Envelope("mqtt", TOPIC + "up", body, T0)
    cs.decode_into(env)
    if env.decoded is None:
        return ("reject", env.reject.reason, env.reject.detail)
    d = env.decoded
    return (d.fmt, d.device_id, d.observed_at, d.metric, [(type(v), v) for v in d.value],
            d.rows_of("connections"), d.rows_of("lorawan_uplinks"), d.facts,
            [(u.item, u.field, u.value, u.reason) for u in d.unmapped], d.n_rows,
            isinstance(d.metric, tuple))


_numbers = st.one_of(st.none(), st.integers(-150, 150), st.floats(-150, 150),
                     st.sampled_from(["-97", "x", True, [1]]))
_rx = st.lists(st.one_of(
    st.fixed_dictionaries({"gatewayId": st.one_of(st.sampled_from(["gw-1", "gw-2", ""]),
                                                  st.integers(0, 9), st.none())},
                          optional={"rssi": _numbers, "snr": _numbers}),
    st.sampled_from([None, "gw-3", 5])), max_size=4)
#: the common uplink itself, drawn as often as the odd ones
_clean_rx = st.lists(st.fixed_dictionaries(
    {"gatewayId": st.sampled_from(["gw-1", "gw-2", "gw-3"])},
    optional={"rssi": st.integers(-130, -30), "snr": st.sampled_from([-20.0, 0.0, 7.5, 9])}),
    max_size=4)


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_the_common_uplink_path_makes_exactly_the_rows_of_the_general_one(known, data):
    """Once a device's facts are known, an uplink takes the common path; whatever the
    uplink holds (odd gateways, numbers as text or of the wrong type, an object with
    unknown, nested or non-numeric fields, a lower frame counter later: a reset), the
    rows, unmapped fields, reset events or the reject equal the general path's."""
    names = st.sampled_from(sorted(known)[:4] + ["x_count"])
    obj = st.one_of(
        st.dictionaries(st.sampled_from(sorted(known)[:4]),
                        st.one_of(st.floats(allow_nan=False), st.integers(-99, 99),
                                  st.text(max_size=3)), max_size=4),
        st.dictionaries(names, st.one_of(_values, st.dictionaries(names, _values, max_size=1)),
                        max_size=4))
    frame = st.one_of(st.integers(0, 20), st.integers(0, 20),
                      st.sampled_from(["12", 3.0, True, None]))
    fast, general = ChirpStack(known), _GeneralPathOnly(known)
    bodies = [uplink()]  # the device's facts: both paths take them the same way
    for k in range(data.draw(st.integers(1, 3))):
        fields = {"time": f"2026-05-28T20:26:4{k + 1}.5Z",
                  "rxInfo": data.draw(st.one_of(_clean_rx, _rx)),
                  "fCnt": data.draw(frame), "fPort": data.draw(frame), "dr": data.draw(frame)}
        if data.draw(st.integers(0, 3)):
            fields["object"] = data.draw(obj)
        bodies.append(uplink(**{k: v for k, v in fields.items() if v is not None}))
    for body in bodies:
        assert _decoded_or_reject(fast, body) == _decoded_or_reject(general, body)


def test_the_common_uplink_path_is_taken_and_reports_a_frame_counter_reset(known):
    cs = ChirpStack(known)
    calls = []
    rows = cs._up_rows
    cs._up_rows = lambda *a: calls.append(rows(*a)) or calls[-1]
    cs.decode(TOPIC + "up", uplink(fCnt=9), 0.0)
    out = cs.decode(TOPIC + "up", uplink(time="2026-05-28T20:26:41.5Z", fCnt=2,
                                         object={"temperature_c": 21.5}), 0.0)
    assert calls[-1] is out and out.n_rows == 1 + 1 + 1 + 1  # reading, heard, uplink, reset
    assert out.facts["device_events"][0]["detail"] == "frame counter 2 after 9"


def _typed_taken(cs: ChirpStack) -> list[bool]:
    """Whether each later decode took the typed path (its result a Decoded)."""
    taken = []
    typed = cs._up_typed
    cs._up_typed = lambda *a: taken.append(type(r := typed(*a)).__name__ == "Decoded") or r
    return taken


def test_the_typed_path_takes_an_uplink_whose_device_info_is_that_of_the_last_one(known):
    """The typed path takes an uplink only when its deviceInfo text is the one whose
    facts the general path took last for the device: a renamed device, or a status event
    in between (other facts), sends the next uplink through the general path, which
    takes the new facts."""
    cs = ChirpStack(known)
    taken = _typed_taken(cs)
    obj = {"temperature_c": 21.5}
    renamed = {"devEui": DEV, "deviceName": "th-1 (hall 2)"}
    status = json.dumps({"time": TIME, "deviceInfo": renamed, "batteryLevel": 80}).encode()
    facts = []
    for k, body in enumerate([uplink(object=obj), uplink(object=obj), uplink(object=obj),
                              uplink(deviceInfo=renamed, object=obj),
                              uplink(deviceInfo=renamed, object=obj), status,
                              uplink(deviceInfo=renamed, object=obj),
                              uplink(deviceInfo=renamed, object=obj)]):
        event = "status" if body is status else "up"
        out = cs.decode(TOPIC + event, body.replace(b"40.5Z", f"4{k}.5Z".encode()), 0.0)
        facts.append(len(out.facts.get("lorawan_devices", [])))
    # the status event does not go through the typed path (only uplinks do)
    assert taken == [False, True, True, False, True, False, True]
    assert facts == [1, 0, 0, 1, 0, 1, 1, 0]


def test_the_typed_path_leaves_what_the_general_parser_refuses_to_it(known):
    """Text that is not UTF-8 or an escaped lone surrogate, even in a field the typed path
    does not read, makes the uplink invalid JSON as before; integers past 64 bits (floats
    to orjson), a null object, an empty gateway id and a bad time take the general path,
    which decides as without the typed path."""
    ref = _GeneralPathOnly(known)
    cs = ChirpStack(known)
    taken = _typed_taken(cs)
    first = uplink(object={"temperature_c": 1.0})
    odd = [first.replace(b'"fPort"', b'"devAddr": "\xff\xfe", "fPort"'),
           first.replace(b'"fPort"', b'"devAddr": "\\ud800", "fPort"'),
           first.replace(b'"fPort": 2', b'"fPort": 2, "x": "\\uDC00"'),
           uplink(object={"temperature_c": 2 ** 70}), uplink(object={"temperature_c": 1.0},
                                                             fCnt=2 ** 64),
           uplink(object={"temperature_c": 1.0}, fCnt=2 ** 63 - 1),
           uplink(object=None), uplink(object={"temperature_c": 1.0}, time="yesterday"),
           uplink(object={"temperature_c": 1.0}, rxInfo=[{"gatewayId": ""}]),
           uplink(object={"temperature_c": "21.5", "humidity_pct": -3})]
    assert _decoded_or_reject(cs, first) == _decoded_or_reject(ref, first)
    for k, body in enumerate(odd):
        body = body.replace(b"20:26:40.5Z", f"20:{27 + k}:40.5Z".encode())
        assert _decoded_or_reject(cs, body) == _decoded_or_reject(ref, body), body
    assert _decoded_or_reject(cs, odd[0])[:2] == ("reject", "invalid_json")
    assert _decoded_or_reject(cs, odd[1])[:2] == ("reject", "invalid_json")
    # only the 64-bit counter and the last (text and an integer in the object) were typed
    assert taken == [False] * 6 + [True] + [False] * 3 + [True] + [False] * 2


@pytest.mark.parametrize("fields", [
    {"deviceInfo": {"devEui": DEV, "deviceProfileName": "acme-th200"},  # a profile claims it
     "object": {"temperature_c": 21.5}},
    {"object": {"temperature_c": 21.5}, "dr": True}, {"object": {}, "fPort": [2]},
    {"object": {"temperature_c": True}}, {"object": [1]},
    {"rxInfo": [{"gatewayId": "gw-1", "rssi": "-90"}], "object": {"temperature_c": 1}},
])
def test_an_uplink_off_the_common_path_is_decoded_as_the_general_path_does(known, fields):
    fast, general = ChirpStack(known), _GeneralPathOnly(known)
    for body in (uplink(**fields), uplink(time="2026-05-28T20:26:41.5Z", **fields)):
        assert _decoded_or_reject(fast, body) == _decoded_or_reject(general, body)


def test_a_number_beyond_a_double_is_invalid_json_on_both_paths(known):
    """The typed path reads every field (session 25; it skipped the ones it does not use,
    unparsed, before): ``1e400`` (invalid JSON to orjson, the general path) refuses the
    uplink alike in a field it uses, in one it reads only to see the keys and in a field
    of no ChirpStack message."""
    cs, ref = ChirpStack(known), _GeneralPathOnly(known)
    taken = _typed_taken(cs)
    first = uplink(object={"temperature_c": 1.0}, txInfo={"frequency": 868100000})
    for dec in (cs, ref):
        dec.decode(TOPIC + "up", first, 0.0)
    for body in (first.replace(b'"fPort": 2', b'"fPort": 2, "margin": 1e400'),
                 first.replace(b'"fPort": 2', b'"fPort": 1e400'),
                 first.replace(b'868100000', b'1e400')):
        assert _decoded_or_reject(cs, body) == _decoded_or_reject(ref, body)
        assert _decoded_or_reject(cs, body)[:2] == ("reject", "invalid_json")
    assert not any(taken)
    assert _decoded_or_reject(cs, first)[0] == "chirpstack:up" and taken[-1]


def chirpstack_uplink(integration, f_cnt: int):
    """An ``up`` event from chirpstack-api's classes with every part ChirpStack fills in
    (gateway time, location and metadata of a receiving gateway, LoRa modulation)."""
    ev = integration.UplinkEvent(deduplication_id=f"d-{f_cnt}", f_cnt=f_cnt, f_port=2, dr=5,
                                 adr=True, dev_addr="01020304", data=b"\x01\x02")
    ev.time.FromMilliseconds(int(T0 * 1000) + f_cnt * 1000)
    info = ev.device_info
    info.dev_eui, info.device_name, info.device_profile_name = DEV, "th-1", "th-generic"
    info.tags["site"] = "north"
    ev.object.update({"temperature_c": 20.0 + f_cnt, "humidity_pct": 40.0})
    for j in range(2):
        rx = ev.rx_info.add(gateway_id=f"gw-{j}", rssi=-90 - j, snr=7.5 - j, uplink_id=99,
                            channel=2, context=b"\0\0", crc_status=1)
        rx.gw_time.FromMilliseconds(int(T0 * 1000))
        rx.location.latitude, rx.location.longitude = 52.1, 4.3
        rx.metadata["region_config_id"] = "eu868"
    ev.tx_info.frequency = 868100000
    lora = ev.tx_info.modulation.lora
    lora.bandwidth, lora.spreading_factor, lora.code_rate = 125000, 7, 1
    return ev


#: (text in ChirpStack's JSON, the same with the key given twice, the key)
TWICE = [(b'"fCnt":5', b'"fCnt":5,"fCnt":6', "fCnt"),                      # the event's
         (b'"temperature_c":25.0', b'"temperature_c":25.0,"temperature_c":99.0',
          "temperature_c"),                                                 # the codec's
         (b'"rssi":-91', b'"rssi":-91,"rssi":-30', "rssi"),                 # a gateway's
         (b'"spreadingFactor":7', b'"spreadingFactor":7,"spreadingFactor":12',
          "spreadingFactor"),                                               # not used
         (b'"longitude":4.3}', b'"longitude":4.3,"longitude":4.4}', "longitude"),
         (b'"region_config_id":"eu868"', b'"region_config_id":"eu868","region_config_id":"x"',
          "region_config_id"),                                              # a map's
         (b'"adr":true', b'"adr":true,"adr":false', "adr")]


@pytest.mark.parametrize(("once", "twice", "key"), TWICE)
@pytest.mark.parametrize("pretty", [False, True])
def test_a_key_given_twice_is_refused_on_both_paths(known, once, twice, key, pretty):
    """An uplink that gives a key twice is ``duplicate_field`` (as file ingest and the
    other live decoders: the last value is not stored) on the typed path as on the
    general one, wherever the key is, and in ChirpStack's compact JSON as pretty-printed
    (session 25; the typed path kept msgspec's last value before). The same uplinks
    without the repeat take the typed path: the check leaves it to ordinary events."""
    integration = pytest.importorskip("chirpstack_api.integration")
    json_format = pytest.importorskip("google.protobuf.json_format")

    def text(f_cnt: int) -> bytes:
        compact = json.dumps(json.loads(json_format.MessageToJson(
            chirpstack_uplink(integration, f_cnt))), separators=(",", ":")).encode()
        return compact if not pretty else json.dumps(json.loads(compact), indent=2).encode()

    def repeat(body: bytes) -> bytes:
        if not pretty:
            assert once in body
            return body.replace(once, twice, 1)
        k = once.split(b":", 1)[0]
        v = once.split(b":", 1)[1].rstrip(b"}")
        extra = twice[len(once.rstrip(b"}")) + 1:].split(b":", 1)[1].rstrip(b"}")
        assert k + b": " + v in body
        return body.replace(k + b": " + v, k + b": " + v + b", " + k + b": " + extra, 1)

    cs, ref = ChirpStack(known), _GeneralPathOnly(known)
    taken = _typed_taken(cs)
    for f_cnt in (3, 4):  # the device's facts, then an uplink of the typed path
        assert _decoded_or_reject(cs, text(f_cnt)) == _decoded_or_reject(ref, text(f_cnt))
    assert taken == [False, True]
    body = repeat(text(5))
    expected = ("reject", "duplicate_field", f"field {key} appears more than once in the "
                "object")
    assert _decoded_or_reject(ref, body) == expected
    assert _decoded_or_reject(cs, body) == expected
    assert taken[2:] == [False]
    assert _decoded_or_reject(cs, text(5))[0] == "chirpstack:up" and taken[3:] == [True]


def test_the_typed_path_knows_every_field_of_chirpstacks_uplink_event():
    """Every key of an uplink is read into a field, so that a repeated one is seen; a key
    of no field leaves the typed path (correct, but slower). The fields are those of
    chirpstack-api's ``UplinkEvent`` in the JSON mapping, nested messages included (a
    newer chirpstack-api that adds one fails here: add it to ``chirpstack._Up``)."""
    integration = pytest.importorskip("chirpstack_api.integration")
    from tsfleet.live import chirpstack

    def missing(descriptor, struct, path):
        fields = set(struct.__struct_fields__)
        for f in descriptor.fields:
            if f.json_name not in fields:
                yield f"{path}{f.json_name}"
                continue
            sub = getattr(chirpstack, "_" + {"UplinkRxInfo": "Rx", "Location": "Location",
                                               "UplinkTxInfo": "Tx", "Modulation": "Modulation",
                                               "LoraModulationInfo": "LoRa",
                                               "FskModulationInfo": "Fsk",
                                               "LrFhssModulationInfo": "LrFhss",
                                               "UplinkRelayRxInfo": "RelayRx",
                                               "JoinServerContext": "JoinServerContext",
                                               "KeyEnvelope": "KeyEnvelope"}.get(
                f.message_type.name if f.message_type else "", "-"), None)
            if sub is not None:
                yield from missing(f.message_type, sub, f"{path}{f.json_name}.")

    assert list(missing(integration.UplinkEvent.DESCRIPTOR, chirpstack._Up, "")) == []


def _pairs(node):
    """A decoded JSON value with every object as ("obj", [(key, value), ...])."""
    if isinstance(node, dict):
        return ("obj", [(k, _pairs(v)) for k, v in node.items()])
    if isinstance(node, list):
        return [_pairs(v) for v in node]
    return node


def _objects(node, path=()):
    """Every object of a ``_pairs`` tree, by its path."""
    if isinstance(node, tuple):
        yield path, node
        for i, (_, v) in enumerate(node[1]):
            yield from _objects(v, (*path, i))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(v, (*path, ("list", i)))


def _dump(node, colon: str, comma: str) -> str:
    if isinstance(node, tuple):
        return "{" + comma.join(f"{json.dumps(k)}{colon}{_dump(v, colon, comma)}"
                                for k, v in node[1]) + "}"
    if isinstance(node, list):
        return "[" + comma.join(_dump(v, colon, comma) for v in node) + "]"
    return json.dumps(node)


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_a_repeated_key_never_passes_the_typed_path(known, data):
    """Whatever object of a ChirpStack uplink (built with chirpstack-api) repeats a key,
    with the same value or another (a number, a text, null, an empty object), before or
    after the first, in compact or spaced JSON: the typed path leaves the event to the
    general one, which refuses it as ``duplicate_field``."""
    integration = pytest.importorskip("chirpstack_api.integration")
    json_format = pytest.importorskip("google.protobuf.json_format")
    colon, comma = data.draw(st.sampled_from([(":", ","), (": ", ", "), (" : ", " ,\n ")]))
    clean = json.loads(json_format.MessageToJson(chirpstack_uplink(integration, 4)))
    cs = ChirpStack(known)
    taken = _typed_taken(cs)
    first = _dump(_pairs(clean), colon, comma).encode()
    assert _decoded_or_reject(cs, first)[0] == "chirpstack:up"
    assert _decoded_or_reject(cs, first.replace(b"T20:26:4", b"T20:27:4"))[0] == "chirpstack:up"
    assert taken == [False, True]
    tree = _pairs(clean)
    objects = [o for _, o in _objects(tree) if o[1]]
    obj = data.draw(st.sampled_from(objects))
    i = data.draw(st.integers(0, len(obj[1]) - 1))
    key, value = obj[1][i]
    other = data.draw(st.sampled_from([value, 7, -1.5, "x", None, ("obj", [])]))
    obj[1].insert(data.draw(st.integers(0, len(obj[1]))), (key, other))
    body = _dump(tree, colon, comma).encode().replace(b"T20:26:4", b"T20:28:4")
    assert _decoded_or_reject(cs, body) == (
        "reject", "duplicate_field", f"field {key} appears more than once in the object")
    # the same event without the repeat would have taken the typed path
    assert _decoded_or_reject(cs, first.replace(b"T20:26:4", b"T20:28:4"))[0] == "chirpstack:up"
    assert taken[2:] == [False, True]
