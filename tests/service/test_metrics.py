"""``tsfleet serve --metrics``: a real Prometheus scrapes it on 127.0.0.1 and the test reads
the values back from Prometheus's query API; ``/healthz`` follows the broker."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from tsfleet.live.broker import free_port
from tsfleet.live.server import ServeConfig, Server
from tsfleet.service.metrics import Histogram, ServeMetrics

from .monitoring_support import LocalPrometheus, find

T0 = 1_780_000_000


def pack(device: str, i: int, value: float = 21.5) -> bytes:
    return json.dumps([{"bn": f"{device}:", "bt": T0 + 60 * i, "n": "temp", "u": "Cel",
                        "v": value}]).encode()


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_histogram_and_exposition_format():
    h = Histogram((0.5, 1.0))
    for v in (0.1, 0.7, 2.0):
        h.observe(v)
    assert h.counts == [1, 2] and h.count == 3

    class Stub:
        writer = subscriber = None

    text = ServeMetrics().render(Stub())
    assert '# TYPE tsfleet_commit_latency_seconds histogram' in text
    assert 'tsfleet_commit_latency_seconds_bucket{le="+Inf"} 0' in text


@pytest.mark.skipif(find("prometheus") is None,
                    reason="prometheus is not installed (apt-get install prometheus)")
def test_prometheus_scrapes_serve_and_reads_back_what_was_stored(broker, tmp_path):
    mport = free_port()
    server = Server(ServeConfig(db=str(tmp_path / "m.duckdb"), mqtt=f"127.0.0.1:{broker.port}",
                                metrics=f"127.0.0.1:{mport}", batch_delay_s=0.1,
                                analyze_every={"firmware": 1.0}))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    prom = None
    try:
        assert server.ready.wait(30) and server.subscriber.subscribed.wait(30)
        assert healthz(mport) == (200, "ok\n")
        prom = LocalPrometheus(f"127.0.0.1:{mport}").start()
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="metrics-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        payloads = [pack("m-1", i) for i in range(3)] + [
            pack("m-1", 0),                   # a duplicate reading
            b'[{"bn": "m-2:", "v": 1',        # invalid JSON: the payload is refused
            pack("m-3", 1, value=5000.0)]     # 5000 degC: quarantined out_of_range
        for p in payloads:
            pub.publish("fleet/x/senml", p, qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        expected = {
            "tsfleet_readings_stored_total": 3,
            "tsfleet_duplicates_total": 1,
            'tsfleet_quarantined_total{reason="out_of_range"}': 1,
            'tsfleet_quarantined_total{reason="payload:invalid_json"}': 1,
            'tsfleet_messages_received_total{transport="mqtt"}': 6,
            "tsfleet_messages_stored_total": 6,
            "tsfleet_commit_latency_seconds_count": 6,
            "tsfleet_mqtt_connected": 1,
            "tsfleet_queue_depth": 0,
            'tsfleet_set_aside_deleted_total{table="quarantine_rows"}': 0,
        }
        for expr, value in expected.items():
            assert prom.wait_value(expr, value) == value, expr
        assert prom.value('tsfleet_commit_latency_seconds_bucket{le="+Inf"}') == 6
        # each analysis's last run and staleness, from the freshness view
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not prom.value(
                'tsfleet_analysis_last_run_timestamp_seconds{analysis="firmware"}'):
            time.sleep(0.5)
        last = prom.value('tsfleet_analysis_last_run_timestamp_seconds{analysis="firmware"}')
        assert last is not None and abs(last - time.time()) < 120
        assert prom.value('tsfleet_analysis_duration_seconds{analysis="firmware"}') >= 0
        assert prom.query("tsfleet_analysis_stale_seconds")
        assert prom.value('up{job="tsfleet"}') == 1
        # the broker goes away: health says so, and Prometheus sees the state change
        broker.stop()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and healthz(mport)[0] == 200:
            time.sleep(0.1)
        code, body = healthz(mport)
        assert code == 503 and "MQTT not connected" in body, body
        assert prom.wait_value("tsfleet_mqtt_connected", 0) == 0
    finally:
        if prom is not None:
            prom.close()
        server.stop()
        t.join(60)
