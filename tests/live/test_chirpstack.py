"""ChirpStack v4 into the store: events built with ChirpStack's own message
definitions (the ``chirpstack-api`` Protobuf classes, and their JSON mapping, which is
ChirpStack's default marshaling), published through a real mosquitto on 127.0.0.1 and
read back from the store against what the test injected."""

from __future__ import annotations

import random
from collections import defaultdict

import paho.mqtt.client as mqtt
import pytest

from tests.live.live_support import T0, RunningServer
from tsfleet import Fleet

integration = pytest.importorskip("chirpstack_api.integration",
                                  reason="pip install chirpstack-api (tsfleet[chirpstack])")
gw_pb = pytest.importorskip("chirpstack_api.gw")
json_format = pytest.importorskip("google.protobuf.json_format")

pytestmark = pytest.mark.network

APP = "5c8f1d2e-0000-4000-8000-000000000001"
GATEWAYS = [f"aa555a00000000{i:02x}" for i in range(1, 5)]


def dev_eui(i: int) -> str:
    return f"70b3d57ed00{i:05x}"


def info(msg, eui: str, name: str, profile: str = "th-generic", tags: dict | None = None):
    di = msg.device_info
    di.dev_eui, di.device_name, di.device_profile_name = eui, name, profile
    di.application_id, di.application_name, di.tenant_id = APP, "plant-north", "t-1"
    for k, v in (tags or {}).items():
        di.tags[k] = v
    return msg


def uplink(eui: str, name: str, t: float, f_cnt: int, obj: dict | None,
           rx: list[tuple[str, int, float]]) -> integration.UplinkEvent:
    up = info(integration.UplinkEvent(deduplication_id=f"{eui}-{f_cnt}-{t}", f_cnt=f_cnt,
                                      f_port=2, dr=5, data=b"\x01\x02"), eui, name,
              tags={"zone": "boiler"})
    up.time.FromMicroseconds(int(t * 1e6))
    if obj is not None:
        up.object.update(obj)
    for g, rssi, snr in rx:
        up.rx_info.add(gateway_id=g, rssi=rssi, snr=snr, uplink_id=f_cnt)
    return up


def encode(msg, as_json: bool) -> bytes:
    return json_format.MessageToJson(msg).encode() if as_json else msg.SerializeToString()


def topic(eui: str, event: str) -> str:
    return f"application/{APP}/device/{eui}/event/{event}"


def build_fleet(n_devices: int = 16, n_uplinks: int = 20, seed: int = 3):
    """Events of a small fleet with known truth: dropped frames, a reset, joins, status."""
    rng = random.Random(seed)
    messages, truth = [], defaultdict(dict)
    for i in range(n_devices):
        eui, name = dev_eui(i), f"th-{i}"
        as_json = i % 2 == 0  # half the fleet in JSON, half in Protobuf
        join = info(integration.JoinEvent(dev_addr=f"0{i:07x}"), eui, name)
        join.time.FromSeconds(T0 - 60)
        messages.append((topic(eui, "join"), encode(join, as_json)))
        reset_at = n_uplinks // 2 if i % 6 == 5 else None   # ABP device restarts its counter
        # frames that never arrived; a loss at either end of a counter run cannot be seen
        # (nothing says a frame was due), so the truth puts none there
        inner = [k for k in range(1, n_uplinks - 1)
                 if reset_at is None or k not in (reset_at - 1, reset_at)]
        lost = set(rng.sample(inner, i % 4))
        f_cnt, n_sent, best = 0, 0, None
        for k in range(n_uplinks):
            t = T0 + k * 600
            if reset_at is not None and k == reset_at:
                f_cnt = 0
            cnt, f_cnt = f_cnt, f_cnt + 1
            if k in lost:
                continue
            n_sent += 1
            rx = [(g, -80 - 8 * j - (i % 5), round(9.5 - 4 * j - (i % 3) * 0.5, 1))
                  for j, g in enumerate(GATEWAYS[i % 2:i % 2 + 3])]
            best = rx[0][0]
            up = uplink(eui, name, t, cnt, {"temperature_c": 20 + i / 10 + k / 100,
                                            "humidity_pct": 40 + k % 7}, rx)
            messages.append((topic(eui, "up"), encode(up, as_json)))
        truth[eui].update(lost=len(lost), sent=n_sent, resets=int(reset_at is not None),
                          best=best, name=name)
        st = info(integration.StatusEvent(margin=10 - i % 8), eui, name)
        st.time.FromSeconds(T0 + n_uplinks * 600)
        if i % 8 == 1:
            st.external_power_source = True
        elif i % 8 == 2:
            st.battery_level_unavailable = True
        else:
            st.battery_level = 50.0 + i
        truth[eui].update(margin=10 - i % 8, battery=None if i % 8 in (1, 2) else 50.0 + i,
                          mains=i % 8 == 1)
        messages.append((topic(eui, "status"), encode(st, as_json)))
    for j, g in enumerate(GATEWAYS):
        for k in range(3):
            stats = gw_pb.GatewayStats(gateway_id=g, rx_packets_received=100 + k + j,
                                       rx_packets_received_ok=90 + k + j, tx_packets_received=5,
                                       tx_packets_emitted=4)
            stats.tx_packets_per_status["OK"] = 4
            stats.time.FromSeconds(T0 + k * 30)
            messages.append((f"eu868/gateway/{g}/event/stats", encode(stats, j % 2 == 0)))
    return messages, truth


def publish_all(port: int, messages, client_id: str) -> int:
    """Publish with QoS 1 without waiting message by message; True once all are acked."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, payload, qos=1) for t, payload in messages]
    for info in infos:
        info.wait_for_publish(timeout=30)
        assert info.is_published()
    client.disconnect()
    client.loop_stop()
    return len(infos)


def serve_and_publish(tmp_path, broker, messages, name: str) -> str:
    db = str(tmp_path / f"{name}.duckdb")
    srv = RunningServer(db, chirpstack_mqtt=f"127.0.0.1:{broker.port}", client_id=name)
    for sub in srv.server.lora_subscribers:
        assert sub.subscribed.wait(30), "the ChirpStack subscriber did not subscribe"
    n = publish_all(broker.port, messages, f"{name}-pub")
    srv.wait_received(n)
    srv.stop()
    return db


def test_chirpstack_events_json_and_protobuf_land_with_their_truth(broker, tmp_path):
    messages, truth = build_fleet()
    bad = [(topic(dev_eui(0), "up"), b'{"deviceInfo": '),               # truncated JSON
           (topic(dev_eui(0), "up"), b"\xff\xfe\x00garbage"),           # not Protobuf
           (topic(dev_eui(0), "up"), b'{"time": "yesterday", "fCnt": 1}'),
           (topic(dev_eui(0), "up"), b'{"fCnt": "many"}'),
           (topic(dev_eui(0), "up"), b"")]
    db = serve_and_publish(tmp_path, broker, bad + messages, "cs-truth")
    with Fleet(db, read_only=True) as f:
        link = {r["device_id"]: r for r in f.query("select * from lorawan_device_link")}
        assert set(link) == set(truth)
        for eui, t in truth.items():
            r = link[eui]
            assert (r["n_uplinks"], r["n_lost"], r["n_resets"]) == (t["sent"], t["lost"],
                                                                    t["resets"]), eui
            assert r["packet_loss_pct"] == pytest.approx(100 * t["lost"] / (t["sent"] + t["lost"]))
            assert r["downlink_gateway_id"] == t["best"] and r["mean_gateways"] == 3
            assert r["device_name"] == t["name"] and r["device_profile_name"] == "th-generic"
            assert r["is_mains"] is t["mains"]
        # readings: two per uplink from the decoded object, battery and margin from status
        n_up = sum(t["sent"] for t in truth.values())
        counts = {r["metric"]: r["n"] for r in f.query(
            "select metric, count(*) as n from readings group by metric")}
        assert counts["temperature_c"] == counts["humidity_pct"] == n_up
        assert counts["link_margin_db"] == len(truth)
        battery = {r["device_id"]: r["value"] for r in f.query(
            "select device_id, value from readings where metric = 'battery_pct'")}
        assert battery == {e: t["battery"] for e, t in truth.items() if t["battery"] is not None}
        margin = {r["device_id"]: r["value"] for r in f.query(
            "select device_id, value from readings where metric = 'link_margin_db'")}
        assert margin == {e: t["margin"] for e, t in truth.items()}
        # every receiving gateway is a heard connection with its RSSI and SNR
        heard = f.query("select count(*) as n, count(distinct gateway_id) as g, min(rssi_dbm) as "
                        "lo, max(snr_db) as hi from connections where event = 'heard'")[0]
        assert heard["n"] == 3 * n_up and heard["g"] == 4
        assert heard["lo"] == -80 - 16 - 4 and heard["hi"] == pytest.approx(9.5)
        events = f.query("select event, count(*) as n from device_events group by event "
                         "order by event")
        assert events == [{"event": "frame_counter_reset",
                           "n": sum(t["resets"] for t in truth.values())},
                          {"event": "joined", "n": len(truth)}]
        tags = f.query("select tags from lorawan_devices limit 1")[0]["tags"]
        assert tags == '{"zone": "boiler"}'
        stats = f.query("select gateway_id, n_rx_received, n_rx_ok, n_tx_requested, "
                        "n_tx_emitted, n_tx_acknowledged, messages_per_s from gateway_stats "
                        "where gateway_id = ? order by observed_at", [GATEWAYS[1]])
        assert [s["n_rx_received"] for s in stats] == [101, 102, 103]
        assert [s["n_rx_ok"] for s in stats] == [91, 92, 93]
        assert {(s["n_tx_requested"], s["n_tx_emitted"], s["n_tx_acknowledged"])
                for s in stats} == {(5, 4, 4)}
        assert [s["messages_per_s"] for s in stats] == [None, pytest.approx(92 / 30),
                                                        pytest.approx(93 / 30)]
        # bad payloads are quarantined with a reason; nothing else was lost
        reasons = sorted(r["reason"] for r in f.query(
            "select reason from quarantine where kind = 'payload'"))
        assert reasons == ["bad_field", "bad_time", "empty_payload", "invalid_json",
                           "invalid_protobuf"]
        # uplinks carry an object, so `data` is not kept; the Protobuf garbage is the only
        # payload ChirpStack's classes could not read
        assert f.query("select count(*) as n from unmapped")[0]["n"] == 0


def test_redelivered_events_are_not_stored_twice(broker, tmp_path):
    messages, truth = build_fleet(n_devices=6, n_uplinks=10)
    db = serve_and_publish(tmp_path, broker, messages + messages[::3], "cs-redeliver")
    with Fleet(db, read_only=True) as f:
        n_up = sum(t["sent"] for t in truth.values())
        assert f.query("select count(*) as n from lorawan_uplinks")[0]["n"] == n_up
        assert f.query("select count(*) as n from connections")[0]["n"] == 3 * n_up
        assert f.query("select sum(n_resets) as n from lorawan_device_link")[0]["n"] == \
            sum(t["resets"] for t in truth.values())
        # an old event seen again is not a reset
        assert f.query("select count(*) as n from device_events where event = "
                       "'frame_counter_reset'")[0]["n"] == sum(t["resets"] for t in truth.values())
