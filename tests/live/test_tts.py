"""The Things Stack v3 into the store: uplink and join messages in the JSON shape of
TTS's MQTT integration (``end_device_ids``, ``uplink_message`` with
``decoded_payload``, ``rx_metadata[]`` and ``last_battery_percentage``), published
through a real mosquitto, read from the ``--mqtt`` broker with ``--topic-layout tts``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.live.live_support import T0, RunningServer
from tests.live.test_chirpstack import publish_all
from tsfleet import Fleet

pytestmark = pytest.mark.network
GATEWAYS = ["plant-gw-1", "plant-gw-2", "plant-gw-3"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def tts_uplink(dev: str, k: int, f_cnt: int, battery: float | None) -> dict:
    t = T0 + k * 900
    msg = {
        "end_device_ids": {"device_id": dev, "application_ids": {"application_id": "plant"},
                           "dev_eui": f"70B3D57ED0{abs(hash(dev)) % 10**6:06d}",
                           "dev_addr": "260B1234"},
        "correlation_ids": [f"as:up:{dev}:{k}"],
        "received_at": iso(t + 0.4),
        "uplink_message": {
            "session_key_id": "AXA==", "f_port": 2, "f_cnt": f_cnt, "frm_payload": "AQI=",
            "decoded_payload": {"temperature_c": 18 + k / 10, "humidity_pct": 55},
            "rx_metadata": [{"gateway_ids": {"gateway_id": g, "eui": f"B827EBFFFE{j:06d}"},
                             "time": iso(t), "rssi": -70 - 10 * j, "channel_rssi": -70 - 10 * j,
                             "snr": 9.0 - 3 * j, "uplink_token": "abc"}
                            for j, g in enumerate(GATEWAYS)],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                         "frequency": "868100000"},
            "received_at": iso(t), "consumed_airtime": "0.061696s",
            "version_ids": {"brand_id": "acme", "model_id": "th-generic"},
        },
    }
    if battery is not None:
        msg["last_battery_percentage"] = {"f_cnt": f_cnt, "value": battery,
                                          "received_at": iso(t)}
    return msg


def test_tts_uplinks_and_joins_land_with_their_truth(broker, tmp_path):
    devices = [f"th-{i}" for i in range(8)]
    messages, n_up, lost = [], 0, {}
    for i, dev in enumerate(devices):
        join = {"end_device_ids": {"device_id": dev, "dev_addr": "260B1234"},
                "received_at": iso(T0 - 30)}
        messages.append((f"v3/plant@acme/devices/{dev}/join", json.dumps(join).encode()))
        lost[dev] = {3, 7} if i % 2 else set()
        for k in range(12):
            if k in lost[dev]:
                continue
            n_up += 1
            messages.append((f"v3/plant@acme/devices/{dev}/up", json.dumps(
                tts_uplink(dev, k, k, 90.0 - k if k % 4 == 0 else None)).encode()))
    messages += [("v3/plant@acme/devices/th-0/up", b'{"uplink_message": {"f_cnt": "x"}}'),
                 ("v3/plant@acme/devices/th-0/up", b"[1, 2]")]
    db = str(tmp_path / "tts.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", topic_layout="tts",
                        topics=["v3/+/devices/+/up", "v3/+/devices/+/join"], client_id="tts")
    n = publish_all(broker.port, messages, "tts-pub")
    srv.wait_received(n)
    srv.stop()
    with Fleet(db, read_only=True) as f:
        link = {r["device_id"]: r for r in f.query("select * from lorawan_device_link")}
        assert {d: (r["n_uplinks"], r["n_lost"]) for d, r in link.items()} == \
            {d: (12 - len(lost[d]), len(lost[d])) for d in devices}
        assert {r["downlink_gateway_id"] for r in link.values()} == {GATEWAYS[0]}
        heard = f.query("select gateway_id, min(rssi_dbm) as rssi, max(snr_db) as snr, "
                        "count(*) as n from connections group by gateway_id order by gateway_id")
        assert heard == [{"gateway_id": g, "rssi": -70 - 10 * j, "snr": 9.0 - 3 * j, "n": n_up}
                         for j, g in enumerate(GATEWAYS)]
        metrics = {r["metric"]: r["n"] for r in f.query(
            "select metric, count(*) as n from readings group by metric")}
        assert metrics["temperature_c"] == metrics["humidity_pct"] == n_up
        assert metrics["battery_pct"] == sum(1 for d in devices for k in (0, 4, 8)
                                             if k not in lost[d])
        assert f.query("select count(*) as n from device_events where event = 'joined'")[0][
            "n"] == len(devices)
        ns = f.query("select distinct network_server, device_profile_name, application_id "
                     "from lorawan_devices")
        assert ns == [{"network_server": "tts", "device_profile_name": "th-generic",
                       "application_id": "plant"}]
        assert sorted(r["reason"] for r in f.query("select reason from quarantine")) == \
            ["bad_field", "invalid_json"]
