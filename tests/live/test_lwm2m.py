"""LwM2M resource paths become readings, firmware reports and update events."""

from __future__ import annotations

import pytest

from tests.live.live_support import T0, decoder
from tsfleet.live.senml import encode_cbor, encode_json

DEC = decoder()


def pack(*records, bn="/3/0/"):
    return [{"bn": bn, "bt": T0, **records[0]}, *records[1:]]


@pytest.mark.parametrize("encode", [encode_json, encode_cbor])
def test_device_object_resources_map_to_readings_and_firmware(encode):
    p = pack({"n": "9", "v": 87}, {"n": "7", "v": 3612}, {"n": "20", "v": 4},
             {"n": "10", "v": 512}, {"n": "3", "vs": "2.4.1"})
    d = DEC.decode(encode(p), topic_device="th-17")
    assert list(zip(d.metric, d.value, strict=True)) == [
        ("battery_pct", 87.0), ("battery_voltage_mv", 3612.0), ("battery_status", 4.0),
        ("memory_free_kb", 512.0)]
    assert set(d.device_id) == {"th-17"}
    assert d.facts == {"firmware_reports": [{"device_id": "th-17", "reported_at": float(T0),
                                             "version": "2.4.1"}]}
    assert d.fmt.startswith("lwm2m+")


def test_endpoint_prefix_in_the_base_name_names_the_device():
    d = DEC.decode(encode_json(pack({"n": "9", "v": 50}, bn="urn:imei:3548/3/0/")))
    assert d.device_id == ["urn:imei:3548"]


def test_power_source_voltage_is_a_battery_voltage_only_for_battery_sources():
    p = pack({"n": "6/0", "v": 1}, {"n": "6/1", "v": 5}, {"n": "7/0", "v": 3600},
             {"n": "7/1", "v": 5000}, {"n": "8/0", "v": 12})
    d = DEC.decode(encode_json(p), topic_device="d1")
    assert list(zip(d.metric, d.value, strict=True)) == [("battery_voltage_mv", 3600.0),
                                                         ("battery_current_ma", 12.0)]
    assert [(u.field, u.reason) for u in d.unmapped] == [
        ("/3/0/7/1", "power_source_5_not_a_battery")]


@pytest.mark.parametrize(("records", "events"), [
    ([{"n": "3", "v": 1}], [("downloading", None)]),
    ([{"n": "3", "v": 3}], [("updating", None)]),
    ([{"n": "3", "v": 0}, {"n": "5", "v": 0}], []),
    ([{"n": "5", "v": 1}], [("succeeded", None)]),
    ([{"n": "5", "v": 5}], [("failed", "integrity check failure")]),
    ([{"n": "5", "v": 11}], [("scheduled", "deferred")]),
    ([{"n": "5", "v": 42}], [("unknown result 42", None)]),
])
def test_firmware_update_state_and_result_become_update_events(records, events):
    d = DEC.decode(encode_json(pack(*records, {"n": "7", "vs": "3.0.0"}, bn="/5/0/")),
                   topic_device="d1")
    got = [(e["state"], e["reason"]) for e in d.facts.get("update_events", [])]
    assert got == events
    for e in d.facts.get("update_events", []):
        assert (e["campaign_id"], e["target_version"], e["event_at"]) == \
            ("lwm2m:3.0.0", "3.0.0", float(T0))


def test_unknown_paths_and_device_attributes_are_kept_unmapped():
    p = pack({"n": "0", "vs": "Acme"}, {"n": "99", "v": 1}, {"n": "9", "v": 70})
    p.append({"bn": "/9999/0/", "n": "1", "v": 5})
    p.append({"bn": "/3303/0/", "n": "5700", "v": 21.5})
    d = DEC.decode(encode_json(p), topic_device="d1")
    assert list(zip(d.metric, d.value, strict=True)) == [("battery_pct", 70.0),
                                                         ("temperature_c", 21.5)]
    assert [(u.field, u.reason) for u in d.unmapped] == [
        ("/3/0/0", "device_attribute"), ("/3/0/99", "unknown_lwm2m_path"),
        ("/9999/0/1", "unknown_lwm2m_path")]
