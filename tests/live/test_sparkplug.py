"""Sparkplug B into the store: an edge node and its devices, their payloads encoded with
the specification's Payload message (tsfleet.live.sparkplug_pb), published through a real
mosquitto on 127.0.0.1 and read back from the store against what the test sent. A
sequence gap must publish the rebirth request, deaths and births must become device
events that device_offline reads, historical metrics keep their own times, and poison
payloads land in quarantine while the rest is stored."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.live_support import T0, Publisher, RunningServer
from tsfleet import Fleet
from tsfleet.live.errors import PayloadError, ProfileError
from tsfleet.live.sparkplug import (
    REBIRTH_METRIC,
    Sparkplug,
    SparkplugMap,
    load_map,
    rebirth_request,
    route,
)
from tsfleet.live.sparkplug_pb import DataType, Payload

pytestmark = pytest.mark.network

GROUP, NODE = "plant", "gw-1"
MAP = """
device = "{device}"
[[metric]]
name = "*/Vibration RMS"
metric = "vibration_g"
unit = "mg"
[[metric]]
name = "Diagnostics/*"
ignore = true
"""
KNOWN = frozenset({"temperature_c", "humidity_pct", "vibration_g", "battery_pct"})


def unit(m, text: str):
    m.properties.keys.append("engUnit")
    m.properties.values.add(type=DataType.String, string_value=text)
    return m


def nbirth(seq: int = 0, bd_seq: int = 0, t: float = T0) -> bytes:
    p = Payload(timestamp=int(t * 1000), seq=seq)
    p.metrics.add(name="bdSeq", datatype=DataType.Int64, long_value=bd_seq)
    p.metrics.add(name=REBIRTH_METRIC, datatype=DataType.Boolean, boolean_value=False)
    unit(p.metrics.add(name="Cabinet/Temperature", alias=100, datatype=DataType.Float,
                       float_value=30.5), "Cel")
    return p.SerializeToString()


def dbirth(seq: int, t: float = T0) -> bytes:
    p = Payload(timestamp=int(t * 1000), seq=seq)
    unit(p.metrics.add(name="Zone 1/Temperature", alias=1, datatype=DataType.Float,
                       float_value=21.0), "Cel")
    unit(p.metrics.add(name="Zone 1/Humidity", alias=2, datatype=DataType.Double,
                       double_value=40.0), "%RH")
    p.metrics.add(name="Zone 1/Vibration RMS", alias=3, datatype=DataType.UInt32, int_value=12)
    p.metrics.add(name="Zone 1/Status", alias=4, datatype=DataType.String, string_value="ok")
    p.metrics.add(name="Zone 1/rssi_dbm", alias=5, datatype=DataType.Int8,
                  int_value=(1 << 32) - 70)  # -70: two's complement, as the spec encodes it
    p.metrics.add(name="Diagnostics/Uptime", alias=6, datatype=DataType.UInt64, long_value=9)
    return p.SerializeToString()


def ddata(seq: int, t: float, temp: float, hum: float, *, historical: bool = False,
          alias: int | None = None) -> bytes:
    p = Payload(timestamp=int(time.time() * 1000) if historical else int(t * 1000), seq=seq)
    for a, dt, field, v in ((1, DataType.Float, "float_value", temp),
                            (2, DataType.Double, "double_value", hum)):
        m = p.metrics.add(alias=alias if alias is not None else a, datatype=dt)
        setattr(m, field, v)
        if historical:
            m.is_historical, m.timestamp = True, int(t * 1000)
    return p.SerializeToString()


def death(seq: int | None = None, bd_seq: int | None = None, t: float = T0 + 3000) -> bytes:
    p = Payload(timestamp=int(t * 1000))
    if seq is not None:
        p.seq = seq
    if bd_seq is not None:
        p.metrics.add(name="bdSeq", datatype=DataType.Int64, long_value=bd_seq)
    return p.SerializeToString()


def topic(kind: str, device: str | None = None, node: str = NODE) -> str:
    return f"spBv1.0/{GROUP}/{kind}/{node}" + (f"/{device}" if device else "")


class Commands:
    """Collects what is published on spBv1.0/+/NCMD/+ (the rebirth requests)."""

    def __init__(self, port: int):
        self.got: list[tuple[str, Payload]] = []
        self.arrived = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-listener")
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("spBv1.0/+/NCMD/+", qos=0)
        self.client.loop_start()

    def _on(self, client, userdata, msg) -> None:
        self.got.append((msg.topic, Payload.FromString(msg.payload)))
        self.arrived.set()

    def wait(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.got) >= n, f"{len(self.got)} NCMD messages, {n} expected"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_edge_node_through_mosquitto(broker, tmp_path):
    mapping = tmp_path / "spb.toml"
    mapping.write_text(MAP)
    db = str(tmp_path / "spb.duckdb")
    server = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", sparkplug=True,
                           sparkplug_map=str(mapping), batch_delay_s=0.1)
    for sub in server.server.lora_subscribers:
        assert sub.subscribed.wait(20)
    ncmd = Commands(broker.port)
    pub = Publisher(broker.port, "edge-gw-1")
    try:
        pub.publish(topic("NBIRTH"), nbirth(seq=0, bd_seq=7))
        pub.publish(topic("DBIRTH", "th-1"), dbirth(1))
        for k in range(5):                                       # seq 2..6
            pub.publish(topic("DDATA", "th-1"), ddata(2 + k, T0 + 60 * (k + 1), 21.0 + k,
                                                      40.0 + k))
        pub.publish(topic("DDATA", "th-1"), ddata(9, T0 + 600, 99.0, 50.0))  # 7 and 8 lost
        ncmd.wait(1)
        # historical: what the node buffered while its link was down, at its own times
        pub.publish(topic("DDATA", "th-1"), ddata(10, T0 - 3600, 15.0, 60.0, historical=True))
        # poison: not protobuf, data of a node never born, an alias no birth declared
        pub.publish(topic("DDATA", "th-1"), b"\xff\xff\xff not protobuf")
        pub.publish(topic("DDATA", "th-9", node="gw-2"), ddata(0, T0, 1.0, 1.0))
        pub.publish(topic("DDATA", "th-1"), ddata(11, T0 + 700, 1.0, 1.0, alias=99))
        # a DEATH/BIRTH cycle of the device, then the node's death
        pub.publish(topic("DDEATH", "th-1"), death(seq=12))
        pub.publish(topic("DBIRTH", "th-1"), dbirth(13, t=T0 + 4000))
        pub.publish(topic("DDATA", "th-1"), ddata(14, T0 + 4060, 22.0, 41.0))
        pub.publish(topic("NDEATH"), death(bd_seq=3, t=T0 + 5000))  # an older session's will
        pub.publish(topic("NDEATH"), death(bd_seq=7, t=T0 + 5000))
        ncmd.wait(2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            server.sync()
            with server.server.writer._held:
                pass
            n = server.count("select count(*) as n from device_events")
            if n >= 6:
                break
            time.sleep(0.2)
    finally:
        pub.close()
        server.stop()
        ncmd.close()

    topics = [t for t, _ in ncmd.got]
    assert topic("NCMD") in topics and topic("NCMD", node="gw-2") in topics
    for _, p in ncmd.got:
        assert [(m.name, m.boolean_value) for m in p.metrics] == [(REBIRTH_METRIC, True)]

    with Fleet(db) as f:
        rows = {(r["device_id"], round(r["t"]), r["metric"]): r["value"] for r in f.query(
            "select device_id, epoch(observed_at) as t, metric, value from readings")}
        want = {("gw-1", T0, "temperature_c"): 30.5,                       # NBIRTH value
                ("th-1", T0, "temperature_c"): 21.0, ("th-1", T0, "humidity_pct"): 40.0,
                ("th-1", T0, "vibration_g"): pytest.approx(0.012),          # 12 mg by the rule
                ("th-1", T0, "rssi_dbm"): -70.0,                            # Int8, signed
                ("th-1", T0 + 600, "temperature_c"): 99.0,                 # after the gap
                ("th-1", T0 - 3600, "temperature_c"): 15.0,                # historical
                ("th-1", T0 - 3600, "humidity_pct"): 60.0,
                ("th-1", T0 + 4060, "temperature_c"): 22.0}
        for k in range(5):
            want[("th-1", T0 + 60 * (k + 1), "temperature_c")] = 21.0 + k
            want[("th-1", T0 + 60 * (k + 1), "humidity_pct")] = 40.0 + k
        for key, v in want.items():
            assert rows.get(key) == v, key
        assert ("th-1", T0 + 700, "temperature_c") not in rows  # the unknown-alias payload
        reasons = sorted(r["reason"] for r in f.query(
            "select reason from quarantine where kind = 'payload'"))
        assert reasons == ["invalid_protobuf", "sparkplug_before_birth",
                           "sparkplug_unknown_alias"]
        unmapped = {r["field"]: r["reason"] for r in f.query("select field, reason from unmapped")}
        assert unmapped["Zone 1/Status"] == "not_numeric_string"
        assert unmapped["NDEATH"] == "sparkplug_stale_death"
        assert "Diagnostics/Uptime" not in unmapped and "bdSeq" not in unmapped
        events = [(round(r["t"]) - T0, r["device_id"], r["event"]) for r in f.query(
            "select epoch(event_at) as t, device_id, event from device_events "
            "order by event_at, device_id")]
        assert events == [(0, "gw-1", "online"), (0, "th-1", "online"),
                          (3000, "th-1", "offline"), (4000, "th-1", "online"),
                          (5000, "gw-1", "offline"), (5000, "th-1", "offline")]
        off = {r["device_id"]: r for r in f.query(
            "select device_id, is_offline, declared_offline_at from device_offline")}
        # the node's death took th-1 offline after its last reading: offline at once
        assert off["th-1"]["is_offline"] and off["th-1"]["declared_offline_at"] is not None
        assert off["gw-1"]["is_offline"]


def test_sequence_wraps_and_redelivery_is_not_a_gap():
    sent = []
    spb = Sparkplug(KNOWN, publish=lambda t, p: sent.append(t), rebirth_every_s=0.0)
    spb.decode(topic("NBIRTH"), nbirth(seq=254), T0)
    spb.decode(topic("DBIRTH", "th-1"), dbirth(255), T0)
    out = spb.decode(topic("DDATA", "th-1"), ddata(0, T0 + 1, 20.0, 30.0), T0)  # 255 -> 0
    assert out.metric == ["temperature_c", "humidity_pct"] and sent == []
    spb.decode(topic("DDATA", "th-1"), ddata(0, T0 + 1, 20.0, 30.0), T0, redelivered=True)
    assert sent == [] and spb.n_gaps == 0
    spb.decode(topic("DDATA", "th-1"), ddata(5, T0 + 2, 20.0, 30.0), T0)
    assert sent == [topic("NCMD")] and spb.n_gaps == 1
    # the rebirth request is rate limited per node
    spb.rebirth_every_s = 60.0
    spb.decode(topic("DDATA", "th-1"), ddata(9, T0 + 3, 20.0, 30.0), T0 + 1)
    assert sent == [topic("NCMD")] and spb.n_gaps == 2


def test_bad_topics_and_payloads_are_rejected_with_reasons():
    spb = Sparkplug(KNOWN, max_payload=200)
    for t, payload, reason in (
            ("fleet/x/senml", b"", "unknown_topic"),
            ("spBv1.0/plant/DDATA/gw-1", b"", "unknown_topic"),          # DDATA needs a device
            (topic("NDATA"), b"\x00" * 300, "oversized_payload"),
            (topic("NDATA"), b"\x0a\xff", "invalid_protobuf"),
            (topic("NDATA"), Payload(seq=0).SerializeToString(), "sparkplug_before_birth")):
        with pytest.raises(PayloadError) as e:
            spb.decode(t, payload, T0)
        assert e.value.reason == reason, t
    # commands, host STATE messages and our own rebirth requests are not data
    assert spb.decode(topic("NCMD"), rebirth_request(T0), T0).n_rows == 0
    assert spb.decode("spBv1.0/STATE/host-1", b'{"online": true}', T0).n_rows == 0
    assert route("spBv1.0/a/b") is None
    # a birth metric without a name is refused; a named DATA metric not in the birth maps
    with pytest.raises(PayloadError, match="no name"):
        bad = Payload(seq=0)
        bad.metrics.add(alias=1, datatype=DataType.Float, float_value=1.0)
        spb.decode(topic("NBIRTH"), bad.SerializeToString(), T0)
    spb.decode(topic("NBIRTH"), nbirth(), T0)
    p = Payload(seq=1)
    p.metrics.add(name="humidity_pct", datatype=DataType.Double, double_value=33.0)
    p.metrics.add(name="Text", datatype=DataType.Int32, is_null=True)
    out = spb.decode(topic("NDATA"), p.SerializeToString(), T0)
    assert out.metric == ["humidity_pct"] and out.value == [33.0]
    assert [u.reason for u in out.unmapped] == ["null_value", "no_mapping"][:1]


def test_map_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[metric]]\nname = "x"\nmetric = "not_a_metric"\n')
    with pytest.raises(ProfileError, match="metric"):
        load_map(bad)
    bad.write_text('device = "{devce}"\n')
    with pytest.raises(ProfileError, match="template"):
        load_map(bad)
    bad.write_text("not toml [")
    with pytest.raises(ProfileError, match="not TOML"):
        load_map(bad)
    with pytest.raises(ProfileError, match="cannot read"):
        load_map(tmp_path / "missing.toml")


_NUMERIC = {  # datatype: (value field, values it may carry)
    DataType.Int8: ("int_value", (-128, 127)), DataType.Int16: ("int_value", (-32768, 32767)),
    DataType.Int32: ("int_value", (-2**31, 2**31 - 1)),
    DataType.Int64: ("long_value", (-2**63, 2**63 - 1)),
    DataType.UInt8: ("int_value", (0, 255)), DataType.UInt32: ("int_value", (0, 2**32 - 1)),
    DataType.UInt64: ("long_value", (0, 2**64 - 1)),
    DataType.Boolean: ("boolean_value", (0, 1)), DataType.Double: ("double_value", None),
}


def _put(m, datatype: int, value) -> None:
    """Set ``value`` as a sender does: signed integers as their two's complement."""
    fname, _ = _NUMERIC[datatype]
    if fname in ("int_value", "long_value") and value < 0:
        value += 1 << (32 if fname == "int_value" else 64)
    setattr(m, fname, bool(value) if fname == "boolean_value" else value)


@st.composite
def _metric(draw):
    birth_type = draw(st.sampled_from(sorted(_NUMERIC)))
    data_type = draw(st.sampled_from([0, birth_type, *sorted(_NUMERIC)]))  # 0: not repeated
    kind = data_type or birth_type
    bounds = _NUMERIC[kind][1]
    value = draw(st.floats(allow_nan=False, allow_infinity=False) if bounds is None
                 else st.integers(*bounds))
    return birth_type, data_type, value, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(_metric(), min_size=1, max_size=6))
def test_data_values_read_as_their_datatype_says(metrics):
    """Each DATA value is read from the field of its own datatype (the BIRTH's when the
    DATA omits it), signed integers from two's complement, a null as null: the direct
    read of the hot path must give what the specification does."""
    sp = Sparkplug(KNOWN, SparkplugMap(metric=[{"name": "Z/*", "metric": "temperature_c"}]))
    sp.decode(topic("NBIRTH"), nbirth(), T0)
    birth = Payload(timestamp=int(T0 * 1000), seq=1)
    for a, (birth_type, _, _, _, _) in enumerate(metrics, start=1):
        birth.metrics.add(name=f"Z/Temperature {a}", alias=a, datatype=birth_type)
    sp.decode(topic("DBIRTH", "th-1"), birth.SerializeToString(), T0)
    data = Payload(timestamp=int(T0 * 1000) + 5000, seq=2)
    want = []
    for a, (_, data_type, value, is_null, by_name) in enumerate(metrics, start=1):
        m = data.metrics.add(timestamp=int(T0 * 1000) + a)
        if by_name:
            m.name = f"Z/Temperature {a}"
        else:
            m.alias = a
        if data_type:
            m.datatype = data_type
        if is_null:
            m.is_null = True
        else:
            _put(m, data_type or metrics[a - 1][0], value)
            want.append(float(value))
    got = sp.decode(topic("DDATA", "th-1"), data.SerializeToString(), T0)
    assert got.value == want
    assert got.observed_at == [T0 + a / 1000 for a, x in enumerate(metrics, start=1)
                               if not x[3]]
    assert [u.reason for u in got.unmapped] == ["null_value"] * sum(x[3] for x in metrics)
