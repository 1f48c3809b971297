"""ChirpStack and The Things Stack payloads decoded without a broker: the vendor
profiles on the codec's object, events that are kept as unmapped, absent fields."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.live_support import T0
from tsfleet import Fleet
from tsfleet.live.chirpstack import ChirpStack
from tsfleet.live.lorawan import _FRACTION, parse_time, tuple_table
from tsfleet.live.server import known_metrics
from tsfleet.live.tts import TheThingsStack

integration = pytest.importorskip("chirpstack_api.integration")
json_format = pytest.importorskip("google.protobuf.json_format")

UP = "application/a/device/70b3d57ed0000001/event/"


@pytest.fixture(scope="module")
def cs():
    with Fleet(memory=True) as f:
        return ChirpStack(known_metrics(f))


def up(obj=None, profile="acme-th200", **rx) -> integration.UplinkEvent:
    ev = integration.UplinkEvent(f_cnt=3, data=b"\x01")
    ev.time.FromSeconds(T0)
    ev.device_info.dev_eui, ev.device_info.device_profile_name = "70b3d57ed0000001", profile
    if obj is not None:
        ev.object.update(obj)
    ev.rx_info.add(gateway_id="gw-1", **rx)
    return ev


def test_the_object_goes_through_the_vendor_profile_named_by_the_device_profile(cs):
    out = cs.decode(UP + "up", up({"vendor": "acme", "dev": "ignored", "ts": T0 + 5,
                                   "tempF": 212.0, "bat_mv": 3600, "extra": 1}, rssi=-97,
                                  snr=0.0).SerializeToString(), T0 + 60)
    rows = dict(zip(out.metric, out.value, strict=True))
    assert rows == {"temperature_c": pytest.approx(100.0), "battery_voltage_v": 3.6}
    assert set(out.device_id) == {"70b3d57ed0000001"}  # the DevEUI, not the payload's id
    assert set(out.observed_at) == {T0 + 5}            # the profile's time field
    assert [u.reason for u in out.unmapped] == ["no_profile_mapping"]
    heard = out.rows_of("connections")
    assert heard == [{"device_id": "70b3d57ed0000001", "gateway_id": "gw-1", "event_at": T0,
                      "event": "heard", "rssi_dbm": -97, "snr_db": 0.0}]


def test_an_uplink_without_codec_keeps_its_data_and_a_missing_rssi_is_unknown(cs):
    out = cs.decode(UP + "up", json_format.MessageToJson(up(snr=4.0)).encode(), T0)
    assert out.n_readings == 0
    assert [(u.field, u.value, u.reason) for u in out.unmapped] == [("data", "AQ==", "no_codec")]
    assert out.rows_of("connections")[0]["rssi_dbm"] is None


def test_events_not_stored_are_kept_as_unmapped_and_resets_come_from_logs(cs):
    log = integration.LogEvent(code=integration.LogCode.Value("UPLINK_F_CNT_RESET"),
                               description="frame-counter reset or rollover detected")
    log.device_info.dev_eui = "70b3d57ed0000001"
    out = cs.decode(UP + "log", log.SerializeToString(), T0)
    assert [e["event"] for e in out.facts["device_events"]] == ["frame_counter_reset"]
    codec = integration.LogEvent(code=integration.LogCode.Value("UPLINK_CODEC"),
                                 description="js error")
    out = cs.decode(UP + "log", json_format.MessageToJson(codec).encode(), T0)
    assert [(u.reason, u.value) for u in out.unmapped] == [("log_uplink_codec", "js error")]
    ack = integration.AckEvent(acknowledged=True, f_cnt_down=4)
    out = cs.decode(UP + "ack", ack.SerializeToString(), T0)
    assert [u.reason for u in out.unmapped] == ["event_not_stored"]


@pytest.mark.parametrize("topic", ["application/a/device/x/up", "gateway/g/event/up",
                                   "fleet/x/senml"])
def test_other_topics_are_refused(cs, topic):
    assert cs.matches(topic) == topic.startswith("gateway/")  # a gateway event, not stats
    with pytest.raises(Exception, match="not a ChirpStack event topic|not stored"):
        cs.decode(topic, b"{}", T0)


def test_tts_battery_as_a_number_and_no_decoded_payload():
    with Fleet(memory=True) as f:
        tts = TheThingsStack(known_metrics(f))
    msg = {"end_device_ids": {"device_id": "th-1"}, "last_battery_percentage": 42.5,
           "uplink_message": {"f_cnt": 1, "frm_payload": "AQI=", "received_at":
                              "2026-05-28T20:26:40.123456789Z", "rx_metadata": [{}]}}
    out = tts.decode("v3/app@t/devices/th-1/up", json.dumps(msg).encode(), 0.0)
    assert list(zip(out.metric, out.value, strict=True)) == [("battery_pct", 42.5)]
    assert out.observed_at == [pytest.approx(T0 + 0.123457)]
    assert sorted(u.reason for u in out.unmapped) == ["no_codec", "no_gateway_id"]
    assert out.rows_of("lorawan_uplinks")[0]["n_gateways"] == 0


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
       st.integers(1, 9), st.integers(0, 10 ** 9 - 1))
@settings(max_examples=300, deadline=None)
def test_the_fast_time_path_agrees_with_the_general_parser(when, digits, frac):
    """The network servers' own form (UTC, Z, 1-9 fraction digits) takes a cached fast
    path; it must give exactly what the general RFC 3339 path gives."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + str(frac).zfill(9)[:digits] + "Z"
    general = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    assert parse_time(text, 0.0) == general.timestamp()
    assert parse_time(text.replace("Z", "+00:00"), 0.0) == general.timestamp()


def test_hot_path_rows_that_do_not_fit_the_columns_go_to_the_pipeline_as_rows():
    rows = [("d1", "g1", T0, "heard", -80, 7.5), ("d2", "g1", "not a time", "heard", None, 0)]
    out = tuple_table("connections", rows)
    assert isinstance(out, list) and out[1]["event_at"] == "not a time"
    table = tuple_table("connections", rows[:1])
    assert table.num_rows == 1 and table.column("rssi_dbm").to_pylist() == [-80.0]
