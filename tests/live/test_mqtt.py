"""MQTT into the store through a real mosquitto: every format, malformed input,
duplicates and lateness, a broker restart and a clean shutdown, counting every reading."""

from __future__ import annotations

import threading
import time

import pytest

from tests.live.live_support import (
    T0,
    Publisher,
    RunningServer,
    senml_cbor,
    senml_json,
    serve_and_send,
    sim_packs,
    stored,
    vendor,
)
from tsfleet import Fleet

pytestmark = pytest.mark.network


def pack(dev: str, i: int, n: int = 10) -> list[dict]:
    """n readings of one device, unique per (dev, i)."""
    return [{"bn": f"{dev}/", "bt": T0 + i * 600, "n": "temp", "u": "Cel", "v": 20.0, "t": 0}] + \
        [{"n": "temp", "u": "Cel", "v": 20.0 + k / 10, "t": k} for k in range(1, n)]


def test_simulated_stream_with_duplicates_and_late_data_stores_exactly_the_fleet(broker, tmp_path):
    packs, ref = sim_packs()
    srv = RunningServer(str(tmp_path / "live.duckdb"), mqtt=f"127.0.0.1:{broker.port}",
                        client_id="t-sim")
    pub = Publisher(broker.port)
    for i, p in enumerate(packs):
        if i % 2:
            pub.publish(f"fleet/{p[0]['bn'][:-1]}/senml-cbor", senml_cbor(p))
        else:
            pub.publish(f"fleet/{p[0]['bn'][:-1]}/senml", senml_json(p))
    # the same packs again, late and reversed: device retransmissions
    for p in packs[::-7]:
        pub.publish("fleet/x/senml", senml_json(p))
    srv.wait_received(pub.n_published)
    pub.close()
    srv.stop()
    with Fleet(str(tmp_path / "live.duckdb"), read_only=True) as live:
        assert stored(live) == stored(ref)
        dup = live.query("select sum(n_duplicates) as d from ingest_batches")[0]["d"]
        ref_dup = ref.query("select sum(n_duplicates) as d from ingest_batches")[0]["d"]
        assert dup == ref_dup + sum(len(p) for p in packs[::-7])
    ref.close()


def test_every_format_and_malformed_input_is_stored_or_quarantined_and_the_stream_flows(
        broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    lwm2m = [{"bn": "/3/0/", "bt": T0, "n": "9", "v": 77}, {"n": "7", "v": 3550},
             {"n": "3", "vs": "2.4.1"}, {"n": "77", "v": 1},
             {"bn": "/5/0/", "n": "5", "v": 5}, {"n": "7", "vs": "2.5.0"}]
    sends = [
        ("fleet/th-1/senml", senml_json(pack("th-1", 0))),
        ("fleet/th-2/senml-cbor", senml_cbor(pack("th-2", 0))),
        ("fleet/lw-1/lwm2m", senml_cbor(lwm2m)),
        ("fleet/acme/acme-th200", vendor({"vendor": "acme", "dev": "ac-1", "ts": T0,
                                          "tempF": 50.0, "bat_mv": 3300, "fw_build": 9})),
        ("fleet/th-3/senml", b'[{"bn":"th-3/","n":"temp","v":2'),          # truncated JSON
        ("fleet/th-3/senml-cbor", b"\x9f\x82\x01"),                         # invalid CBOR
        ("fleet/th-3/senml", senml_json([{"bn": "th-3/", "bt": T0, "n": "temp", "u": "Cel",
                                          "v": "warm"}])),                  # wrong type
        ("fleet/th-3/senml", senml_json([{"bn": "th-3/", "bt": T0, "n": "temp", "u": "Cel",
                                          "v": 5000.0}])),                  # absurd value
        ("fleet/th-3/senml", senml_json(pack("th-3", 0, n=300))),          # oversized
        ("fleet/th-4/senml", senml_json(pack("th-4", 0))),                 # still flowing
    ]
    serve_and_send(db, broker, sends, client_id="t-formats", max_payload=4096)
    with Fleet(db, read_only=True) as f:
        per_device = {r["device_id"]: r["n"] for r in f.query(
            "select device_id, count(*) as n from readings group by all")}
        assert per_device == {"th-1": 10, "th-2": 10, "th-4": 10, "lw-1": 2, "ac-1": 2}
        assert f.query("select metric, value from readings where device_id = 'ac-1' "
                       "order by metric") == [
            {"metric": "battery_voltage_v", "value": pytest.approx(3.3)},
            {"metric": "temperature_c", "value": pytest.approx(10.0)}]
        assert f.query("select device_id, version from firmware_reports") == \
            [{"device_id": "lw-1", "version": "2.4.1"}]
        assert f.query("select state, reason, target_version from update_events") == \
            [{"state": "failed", "reason": "integrity check failure", "target_version": "2.5.0"}]
        reasons = sorted((r["kind"], r["reason"]) for r in f.query(
            "select kind, reason from quarantine"))
        assert reasons == [("payload", "invalid_cbor"), ("payload", "invalid_json"),
                           ("payload", "oversized_payload"), ("readings", "bad_number"),
                           ("readings", "out_of_range")]
        assert all(r["source"] == "live:mqtt" for r in f.query("select source from quarantine"))
        unmapped = sorted((r["field"], r["reason"]) for r in f.query(
            "select field, reason from unmapped"))
        assert unmapped == [("/3/0/77", "unknown_lwm2m_path"), ("fw_build", "no_profile_mapping")]


def test_broker_restart_mid_stream_loses_nothing_and_stores_nothing_twice(broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-restart",
                        batch_delay_s=0.2)
    pub = Publisher(broker.port)
    n_msgs, per = 300, 10

    def stream():
        for i in range(n_msgs):
            pub.publish(f"fleet/dev-{i % 7}/senml", senml_json(pack(f"dev-{i % 7}", i, per)))

    t = threading.Thread(target=stream)
    t.start()
    while pub.n_published < n_msgs // 3:
        time.sleep(0.01)
    broker.stop()
    time.sleep(0.5)
    broker.start()
    t.join(120)
    assert pub.n_published == n_msgs
    deadline = time.monotonic() + 60
    while srv.server.writer.stats.n_accepted < n_msgs * per:
        assert time.monotonic() < deadline, srv.server.writer.stats
        time.sleep(0.1)
    srv.sync()
    assert srv.server.subscriber.n_connects >= 2  # it did reconnect, to its old session
    pub.close()
    srv.stop()
    with Fleet(db, read_only=True) as f:
        n, distinct = f.query("select count(*) as n, count(distinct (device_id, observed_at, "
                              "metric)) as d from readings")[0].values()
        assert n == distinct == n_msgs * per
        assert f.query("select count(*) as n from quarantine")[0]["n"] == 0


def test_clean_shutdown_commits_and_acknowledges_what_it_holds(broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-stop",
                        batch_delay_s=300, batch_rows=10**9)
    pub = Publisher(broker.port)
    for i in range(40):
        pub.publish("fleet/d1/senml", senml_json(pack("d1", i)))
    deadline = time.monotonic() + 30
    while srv.server.n_received < 40:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert srv.server.writer.stats.n_messages == 0  # all held, nothing committed yet
    srv.stop()
    with Fleet(db, read_only=True) as f:
        assert f.query("select count(*) as n from readings")[0]["n"] == 400
    # the same session again: everything was acknowledged, so nothing is redelivered
    again = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-stop")
    pub.publish("fleet/d1/senml", senml_json(pack("d1", 99)))
    again.wait_received(1)
    assert again.server.n_received == 1
    assert again.server.writer.stats.n_redelivered == 0
    pub.close()
    again.stop()
