"""Vendor JSON through declarative profiles; a wrong profile is refused clearly."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.live_support import T0, decoder, vendor
from tsfleet.errors import TsfleetError
from tsfleet.live.decode import Decoder
from tsfleet.live.errors import PayloadError, ProfileError
from tsfleet.live.profiles import Profile, Profiles, load_profile

DEC = decoder()


def test_acme_profile_converts_fahrenheit_and_millivolts_and_keeps_unknown_fields():
    d = DEC.decode(vendor({"vendor": "acme", "dev": "th-5", "ts": T0, "tempF": 212.0,
                           "hum": 44.5, "bat_mv": 3612, "rssi": -91, "seq": 7,
                           "diag": {"reboots": 2}}))
    got = dict(zip(d.metric, d.value, strict=True))
    assert got["temperature_c"] == pytest.approx(100.0)
    assert got["battery_voltage_v"] == pytest.approx(3.612)
    assert (got["humidity_pct"], got["rssi_dbm"]) == (44.5, -91.0)
    assert set(d.device_id) == {"th-5"} and set(d.observed_at) == {float(T0)}
    assert [(u.field, u.value, u.reason) for u in d.unmapped] == [
        ("diag.reboots", "2", "no_profile_mapping")]
    assert d.fmt == "vendor:acme-th200"


@pytest.mark.parametrize("dev", [["th-5"], {"id": "th-5"}, True])
def test_a_device_id_that_is_not_one_id_rejects_the_payload(dev):
    """A list stood as the id "['th-5']" (its Python text); now the payload is quarantined."""
    with pytest.raises(PayloadError) as exc:
        DEC.decode(vendor({"vendor": "acme", "dev": dev, "ts": T0, "tempF": 212.0}))
    assert exc.value.reason == "bad_value" and "device id must be one id" in exc.value.detail
    assert DEC.decode(vendor({"vendor": "acme", "dev": 17, "ts": T0, "tempF": 212.0})
                      ).device_id == ["17"]                       # a number is an id


def test_vibrotek_profile_scales_adc_counts_of_each_sample():
    payload = {"model": "VX-3", "id": "vib-42",
               "samples": [{"t_ms": T0 * 1000, "acc": 4095, "temp_c": 41.0},
                           {"t_ms": T0 * 1000 + 500, "acc": 0}]}
    for raw in (vendor(payload), cbor2.dumps(payload)):
        d = DEC.decode(raw)
        assert list(zip(d.observed_at, d.metric, d.value, strict=True)) == [
            (float(T0), "vibration_g", 16.0), (float(T0), "temperature_c", 41.0),
            (T0 + 0.5, "vibration_g", 0.0)]


def test_topic_segment_selects_the_profile_and_device_source_is_configurable():
    payload = vendor({"dev": "from-payload", "ts": T0, "tempF": 32.0})
    d = DEC.decode(payload, fmt="acme-th200", topic_device="from-topic")
    assert d.device_id == ["from-payload"] and d.value == [pytest.approx(0.0)]
    topic_first = Decoder(DEC.known, DEC.profiles, device_from="topic")
    assert topic_first.decode(payload, fmt="acme-th200", topic_device="from-topic"
                              ).device_id == ["from-topic"]


def write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = '''name = "x-1"
manufacturer = "X"
device_id = "id"
[fields.t]
metric = "temperature_c"
'''


@pytest.mark.parametrize(("body", "message"), [
    ('[fields.t]\nmetric = "temperature_f"\n', "metric 'temperature_f' is not a canonical metric"),
    ('[fields.t]\nmetric = "temperature_c"\nunit = "mV"\n',
     "unit 'mV' measures voltage and cannot convert to temperature_c (temperature)"),
    ('[fields.t]\nmetric = "temperature_c"\nunit = "F"\nscale = 2\n',
     "give one of unit, scale or adc, not unit and scale"),
    ('[fields.t]\nmetric = "temperature_c"\nunit = "furlongs"\n', "unknown unit 'furlongs'"),
    ('[fields.t]\nmetric = "vibration_g"\nadc = { bits = 40, hi = 16 }\n', "fields.t.adc.bits"),
    ('[fields.t]\nmetric = "temperature_c"\nunits = "F"\n', "fields.t.units: Extra inputs"),
])
def test_a_wrong_profile_is_rejected_with_file_field_and_problem(tmp_path, body, message):
    path = write(tmp_path, 'name = "bad"\nmanufacturer = "X"\n' + body)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert isinstance(err.value, TsfleetError)


def test_unreadable_profiles_and_name_clashes_are_rejected(tmp_path):
    with pytest.raises(ProfileError, match="cannot read it"):
        load_profile(write(tmp_path, "name = [", "broken.toml"))
    with pytest.raises(ProfileError, match="fields: Field required"):
        load_profile(write(tmp_path, 'name = "y"\nmanufacturer = "Y"\n', "nofields.toml"))
    clash = tmp_path / "clash"
    clash.mkdir()
    write(clash, GOOD.replace("x-1", "acme-th200"))
    with pytest.raises(ProfileError, match="already taken"):
        Profiles([clash])
    with pytest.raises(ProfileError, match="does not exist"):
        Profiles([tmp_path / "nowhere"])


def test_adding_a_manufacturer_is_a_file(tmp_path):
    write(tmp_path, GOOD.replace('[fields.t]', 'time = "when"\ntime_format = "iso8601"\n'
                                 'match = { field = "mfr", equals = "X" }\n[fields.t]'), "x.toml")
    (tmp_path / "x.json").write_text(json.dumps(
        {"name": "y-2", "manufacturer": "Y", "time": "ms", "time_format": "unix_ms",
         "fields": {"mv": {"metric": "battery_voltage_v", "unit": "mV"}}}))
    dec = Decoder(DEC.known, Profiles([tmp_path]))
    d = dec.decode(vendor({"mfr": "X", "id": "x-9", "when": "2026-05-28T20:26:40Z", "t": 20}))
    assert (d.device_id, d.observed_at, d.metric) == (["x-9"], [float(T0)], ["temperature_c"])
    d = dec.decode(vendor({"ms": T0 * 1000, "mv": 3000}), fmt="y-2", topic_device="y-9")
    assert (d.device_id, d.observed_at, d.value) == (["y-9"], [float(T0)], [3.0])



@pytest.mark.parametrize(("unit", "sent", "stored"), [
    ("degC", 21.5, 21.5), ("°C", 21.5, 21.5), ("℃", 21.5, 21.5), ("Cel", 21.5, 21.5),
    ("degF", 212.0, 100.0), ("°F", 212.0, 100.0), ("℉", 212.0, 100.0),
    ("[degF]", 212.0, 100.0), ("F", 212.0, 100.0)])
def test_a_profile_may_give_a_temperature_in_the_spelling_its_vendor_uses(tmp_path, unit, sent,
                                                                          stored):
    """``unit = "°C"`` (and degC, ℃, the Fahrenheit spellings, UCUM's [degF]) is loaded
    and converts; written as the file gives it, in UTF-8 TOML."""
    (tmp_path / "t.toml").write_text(
        f'name = "t-1"\nmanufacturer = "T"\ndevice_id = "id"\ntime = "ts"\n'
        f'match = {{ field = "mfr", equals = "T" }}\n'
        f'[fields.temp]\nmetric = "temperature_c"\nunit = "{unit}"\n', encoding="utf-8")
    dec = Decoder(DEC.known, Profiles([tmp_path]))
    for raw in (vendor({"mfr": "T", "id": "t-9", "ts": T0, "temp": sent}),
                cbor2.dumps({"mfr": "T", "id": "t-9", "ts": T0, "temp": sent})):
        d = dec.decode(raw)
        assert (d.metric, d.value) == (["temperature_c"], [pytest.approx(stored)])


_parts = st.sampled_from(["vendor", "model", "meta", "id"])
_leaf = st.one_of(st.sampled_from(["acme", "VX-3", 1, 1.0, True]), st.none())
_payloads = st.recursive(_leaf, lambda inner: st.dictionaries(_parts, inner, max_size=3),
                         max_leaves=6).filter(lambda p: isinstance(p, dict))


@given(matches=st.lists(st.tuples(st.lists(_parts, min_size=1, max_size=2),
                                  st.sampled_from(["acme", "VX-3", 1, True])), max_size=3),
       payload=_payloads, data=st.data())
@settings(max_examples=300, deadline=None)
def test_find_is_the_first_profile_whose_match_holds(matches, payload, data):
    """Profiles.find answers "no profile" without trying each one when the payload holds
    none of the match fields' first names; it must still be the first matching profile
    (the payload is often made to hold one profile's match, nested or not)."""
    profiles = Profiles(shipped=False)
    for k, (path, equals) in enumerate(matches):
        profiles.add(Profile.model_validate({
            "name": f"p{k}", "manufacturer": "m",
            "match": {"field": ".".join(path), "equals": equals},
            "fields": {"x": {"metric": "temperature_c"}}}))
    if matches and data.draw(st.booleans()):  # hold the match of one of them
        path, equals = data.draw(st.sampled_from(matches))
        node = payload
        for part in path[:-1]:
            node[part] = node = node[part] if isinstance(node.get(part), dict) else {}
        node[path[-1]] = equals
    first = next((p for p in profiles.by_name.values() if p.matches(payload)), None)
    assert profiles.find(payload) is first
