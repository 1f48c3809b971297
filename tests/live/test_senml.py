"""SenML (RFC 8428) packs in JSON and CBOR resolve to the right readings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.live_support import T0, decoder, serve_and_send
from tsfleet import Fleet
from tsfleet.live.errors import PayloadError
from tsfleet.live.senml import encode_cbor, encode_json

DEC = decoder()


def rows(d):
    return list(zip(d.device_id, d.observed_at, d.metric, d.value, strict=True))


def test_base_fields_resolve_names_times_units_and_values():
    pack = [{"bn": "urn:dev:th-1:", "bt": T0, "bu": "Cel", "bv": 20.0, "n": "temp", "v": 1.5},
            {"n": "temp", "t": 60, "v": 2.0},
            {"n": "hum", "u": "%RH", "t": 60, "v": 41.0, "bv": 0},
            {"bn": "th-2/", "n": "batt", "u": "%EL", "v": 87}]
    for payload in (encode_json(pack), encode_cbor(pack)):
        d = DEC.decode(payload, now=0.0)
        assert rows(d) == [("urn:dev:th-1", float(T0), "temperature_c", 21.5),
                           ("urn:dev:th-1", float(T0 + 60), "temperature_c", 22.0),
                           ("urn:dev:th-1", float(T0 + 60), "humidity_pct", 41.0),
                           ("th-2", float(T0), "battery_pct", 87.0)]
        assert d.unmapped == []


def test_relative_time_is_relative_to_receipt():
    d = DEC.decode(encode_json([{"bn": "d1/", "n": "temp", "u": "Cel", "v": 20, "t": -30},
                                {"n": "temp", "u": "Cel", "v": 21}]), now=T0 + 100.0)
    assert d.observed_at == [T0 + 70.0, T0 + 100.0]


@pytest.mark.parametrize(("unit", "name", "metric"), [
    ("Cel", "t", "temperature_c"), ("K", "t", "temperature_k"), ("%RH", "h", "humidity_pct"),
    ("%EL", "b", "battery_pct"), ("V", "battery", "battery_voltage_v"),
    ("m/s2", "vib", "vibration_ms2"), ("Pa", "p", "pressure_pa"), ("dBm", "sig", "rssi_dbm"),
    ("%", "humidity", "humidity_pct"), ("%", "battery", "battery_pct"),
    ("g", "vibration", "vibration_g"), (None, "co2_ppm", "co2_ppm"),
    # temperatures as devices write them instead of SenML's Cel (session 25)
    ("degC", "t", "temperature_c"), ("°C", "t", "temperature_c"), ("℃", "t", "temperature_c"),
    ("degF", "t", "temperature_f"), ("°F", "t", "temperature_f"), ("℉", "t", "temperature_f"),
    ("[degF]", "t", "temperature_f"),
])
def test_units_map_to_canonical_metrics(unit, name, metric):
    rec = {"bn": "d1/", "bt": T0, "n": name, "v": 1.0}
    if unit:
        rec["u"] = unit
    assert DEC.decode(encode_json([rec])).metric == [metric]


@pytest.mark.parametrize(("unit", "name", "reason"), [
    ("V", "supply", "ambiguous_unit"), ("g", "weight", "ambiguous_unit"),
    ("W", "p", "unknown_unit"),
    ("C", "temp", "unknown_unit"), ("F", "temp", "unknown_unit"),  # SenML: coulomb, farad
    ("EL", "battery", "battery_seconds_remaining"), (None, "mystery", "no_mapping"),
])
def test_unmappable_records_are_kept_with_a_reason(unit, name, reason):
    rec = {"bn": "d1/", "bt": T0, "n": name, "v": 3.0}
    if unit:
        rec["u"] = unit
    d = DEC.decode(encode_json([rec, {"n": "temp", "u": "Cel", "v": 20}]))
    assert d.metric == ["temperature_c"]
    assert [(u.field, u.reason, u.value, u.device_id) for u in d.unmapped] == \
        [(f"d1/{name}", reason, "3.0", "d1")]


def test_string_boolean_data_and_sum_records_are_unmapped_not_dropped():
    pack = [{"bn": "d1/", "bt": T0, "n": "state", "vs": "ok"}, {"n": "door", "vb": True},
            {"n": "blob", "vd": "AAEC"}, {"n": "energy", "u": "J", "s": 12.0}]
    d = DEC.decode(encode_json(pack))
    assert d.n_readings == 0
    assert [u.reason for u in d.unmapped] == ["not_numeric_vs", "not_numeric_vb",
                                              "not_numeric_vd", "sum_only"]
    assert d.unmapped[2].value == "000102"


@pytest.mark.parametrize(("payload", "reason"), [
    (b'[{"n":"t","v":1', "invalid_json"),
    (b"\xff\xfe", "unknown_format"),
    (b"\x9f\x01", "invalid_cbor"),
    (b"", "empty_payload"),
    (b'{"n":"t","v":1}', "unknown_profile"),
    (b'[1, 2]', "invalid_senml"),
    (b'[{"n":"t","v":1,"vs":"x"}]', "invalid_senml"),
    (b'[{"n":"t","v":1,"foo_":1}]', "invalid_senml"),
    (b'[{"bver":11,"n":"t","v":1}]', "invalid_senml"),
    (b'[{"n":"t"}]', "invalid_senml"),
    (b'"text"', "unknown_format"),
])
def test_malformed_payloads_raise_a_payload_error_with_a_reason(payload, reason):
    with pytest.raises(PayloadError) as err:
        DEC.decode(payload, fmt="senml-cbor" if payload.startswith(b"\x9f") else None)
    assert err.value.reason == reason
    assert err.value.detail


def test_wrong_types_and_absurd_times_are_left_to_the_pipeline_to_judge():
    d = DEC.decode(encode_json([{"bn": "d1/", "bt": T0, "n": "temp", "u": "Cel", "v": "hot"},
                                {"n": "temp", "u": "Cel", "v": 1, "t": 1e300}]))
    assert d.value == ["hot", 1.0]
    assert d.observed_at[1] == "1e+300"  # text: quarantined as bad_timestamp, not a crash


def test_oversized_payload_is_refused_with_the_configured_limit():
    small = type(DEC)(DEC.known, DEC.profiles, max_payload=100)
    with pytest.raises(PayloadError, match="exceeds the limit of 100 bytes") as err:
        small.decode(encode_json([{"n": "t", "v": 1.0}] * 20))
    assert err.value.reason == "oversized_payload"


records = st.lists(st.fixed_dictionaries(
    {"n": st.sampled_from(["temp", "hum", "battery"]),
     "v": st.floats(-1e6, 1e6, allow_nan=False),
     "t": st.floats(-1e4, 1e4, allow_nan=False)},
    optional={"u": st.sampled_from(["Cel", "%RH", "%EL", "V", "W"])}), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(records, st.floats(2 ** 28, 4e9))
def test_json_and_cbor_encodings_of_a_pack_decode_alike(recs, bt):
    pack = [{"bn": "dev-1/", "bt": bt, **recs[0]}, *recs[1:]]
    a = DEC.decode(encode_json(pack), now=0.0)
    b = DEC.decode(encode_cbor(pack), now=0.0)
    assert rows(a) == rows(b)
    assert a.n_readings + len(a.unmapped) == len(pack)
    expected = [bt + r["t"] for r in pack]
    assert all(any(math.isclose(t, e) for e in expected) for t in a.observed_at)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_either_decode_or_raise_a_payload_error(data):
    try:
        DEC.decode(data)
    except PayloadError as exc:
        assert exc.reason


def full_path(payload: bytes, now: float):
    """What the general resolver gives, bypassing the fast path."""
    from tsfleet.live.senml import parse_cbor, parse_json, resolve

    pack = parse_json(payload) if payload[:1] == b"[" else parse_cbor(payload)
    return DEC._senml(resolve(pack, now), "senml+json" if payload[:1] == b"[" else "senml+cbor",
                      None)


cells = st.one_of(st.floats(allow_nan=True), st.integers(-2 ** 70, 2 ** 70), st.booleans(),
                  st.text(max_size=3), st.none())
wild = st.lists(st.fixed_dictionaries(
    {"n": st.one_of(st.sampled_from(["temp", "hum", "battery", "3/0/9", "x"]), st.integers()),
     "v": cells},
    optional={"u": st.one_of(st.sampled_from(["Cel", "%RH", "%EL", "V", "W", "g"]), cells),
              "t": cells, "bn": st.sampled_from(["dev-1/", "dev-2:", "", "/3/0/"]),
              "bt": cells, "bu": st.sampled_from(["Cel", "%RH"]), "bv": cells, "s": cells}),
    min_size=0, max_size=8)


@settings(max_examples=300, deadline=None)
@given(wild, st.booleans())
def test_the_fast_path_decodes_exactly_as_the_general_resolver(pack, cbor):
    """Common packs take a shortcut; whatever the pack, the result is the same rows,
    unmapped fields and errors as the general path's."""
    payload = encode_cbor(pack) if cbor else encode_json(pack)
    now = T0 + 0.5
    try:
        expected = full_path(payload, now)
    except PayloadError as exc:
        with pytest.raises(PayloadError) as err:
            DEC.decode(payload, now=now)
        assert err.value.reason == exc.reason
        return
    got = DEC.decode(payload, now=now)
    assert repr(rows(got)) == repr(rows(expected))
    assert repr(got.unmapped) == repr(expected.unmapped)  # NaN times compare by text
    assert repr(got.facts) == repr(expected.facts)
    assert got.fmt == expected.fmt


plain = st.lists(st.fixed_dictionaries(
    {"n": st.sampled_from(["temp", "hum", "battery", "3/0/9"]),
     "v": st.one_of(st.floats(-1e6, 1e6), st.integers(-10 ** 6, 10 ** 6))},
    optional={"u": st.sampled_from(["Cel", "%RH", "%EL", "V"]),
              "t": st.one_of(st.floats(-1e4, 1e4), st.integers(-10 ** 4, 10 ** 4)),
              "bn": st.sampled_from(["dev-1/", "dev-2:"]), "bu": st.sampled_from(["Cel", "%RH"]),
              "bt": st.one_of(st.floats(2 ** 28, 4e9), st.integers(2 ** 28, 4 * 10 ** 9))}),
    min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(plain, st.booleans())
def test_the_fast_path_agrees_on_plain_packs(pack, cbor):
    test_the_fast_path_decodes_exactly_as_the_general_resolver.hypothesis.inner_test(pack, cbor)


def test_a_typical_pack_takes_the_fast_path():
    pack = [{"bn": "dev-1/", "bt": T0, "n": "temp", "u": "Cel", "v": 20.0}]
    pack += [{"n": "temp", "u": "Cel", "v": 20.0 + k / 100, "t": k * 1e-3} for k in range(1, 50)]
    from tsfleet.live.senml import parse_json

    fast = DEC._senml_fast(parse_json(encode_json(pack)), "senml+json", None, 0.0)
    assert fast is not None and fast.n_readings == 50
    assert rows(fast) == rows(full_path(encode_json(pack), 0.0))


#: (unit, value sent, temperature_c stored): every spelling of Celsius and Fahrenheit
TEMPERATURES = [("Cel", 21.5, 21.5), ("degC", 22.0, 22.0), ("°C", 23.0, 23.0),
                ("℃", 24.0, 24.0), ("K", 298.15, 25.0), ("degF", 212.0, 100.0),
                ("°F", 32.0, 0.0), ("℉", 50.0, 10.0), ("[degF]", -40.0, -40.0)]


@pytest.mark.network
def test_celsius_and_fahrenheit_in_every_spelling_are_stored_in_celsius(broker, tmp_path):
    """Through a real mosquitto and the ingest pipeline: ``degC``, ``°C`` (as UTF-8 and as
    a JSON escape, and in CBOR), ``℃`` and the Fahrenheit spellings land as
    ``temperature_c`` converted; SenML's ``C`` (coulomb) and ``F`` (farad) stay unmapped,
    ``unknown_unit``."""
    db = str(tmp_path / "units.duckdb")
    sends = []
    for i, (unit, value, _) in enumerate(TEMPERATURES):
        pack = [{"bn": f"tu-{i}/", "bt": T0, "n": "temp", "u": unit, "v": value}]
        sends.append((f"fleet/tu-{i}/senml", encode_json(pack)))       # \u00b0C escapes
        sends.append((f"fleet/tu-{i}/senml-cbor", encode_cbor([{**pack[0], "bt": T0 + 1}])))
    sends.append(("fleet/tu-u/senml", f'[{{"bn":"tu-u/","bt":{T0},"n":"temp","u":"°C",'
                                      f'"v":19.5}}]'.encode()))           # raw UTF-8
    sends.append(("fleet/tu-x/senml", encode_json([{"bn": "tu-x/", "bt": T0, "n": "temp",
                                                    "u": "C", "v": 1.0},
                                                   {"n": "temp", "u": "F", "v": 2.0}])))
    serve_and_send(db, broker, sends, client_id="t-temp-units")
    with Fleet(db, read_only=True) as f:
        rows = f.query("select device_id, observed_at, metric, value from readings "
                       "order by device_id, observed_at")
        unmapped = f.query("select field, unit, reason from unmapped order by unit")
    expected = {f"tu-{i}": want for i, (_, _, want) in enumerate(TEMPERATURES)}
    expected["tu-u"] = 19.5
    assert {r["metric"] for r in rows} == {"temperature_c"}
    got: dict[str, list[float]] = {}
    for r in rows:
        got.setdefault(r["device_id"], []).append(r["value"])
    assert {d: [pytest.approx(v) for v in vals] for d, vals in got.items()} == {
        d: [pytest.approx(want)] * (1 if d == "tu-u" else 2) for d, want in expected.items()}
    assert [(u["field"], u["unit"], u["reason"]) for u in unmapped] == [
        ("tu-x/temp", "C", "unknown_unit"), ("tu-x/temp", "F", "unknown_unit")]
