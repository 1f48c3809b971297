"""The documented mosquitto.conf (docs/deploy/mosquitto.conf), run as it is with only
paths and the port replaced: a backlog published while ``tsfleet serve`` is stopped is
delivered in full, over TLS, with users and the ACL, when serve comes back.

The issue asks for 100,000 messages; under this machine's load that takes about a
minute, so the test sends ``TSFLEET_BACKLOG_N`` messages (default 10,000, 10 times
mosquitto's stock limit of 1,000) and ``TSFLEET_BACKLOG_N=100000`` runs the full
count (docs/live.md records the figures)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tsfleet.live.broker import LocalBroker, find_mosquitto
from tsfleet.live.security import MqttSecurity
from tsfleet.live.server import ServeConfig, Server

from .live_support import RunningServer
from .secure_support import ACL, USERS, have_tools, make_certificates, temp_folder

CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "mosquitto.conf"
T0 = 1_780_000_000


def documented_broker(certs) -> LocalBroker:
    """A LocalBroker whose config is the documented file with paths and port replaced."""
    b = LocalBroker()
    folder = b.dir
    pw, acl = folder / "passwd", folder / "acl"
    for i, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(pw), user,
                        password], check=True, capture_output=True, timeout=30)
    acl.write_text(ACL)
    for p in (pw, acl):
        p.chmod(0o644)
    text = CONF.read_text()
    for old, new in (("/etc/mosquitto/passwd", str(pw)), ("/etc/mosquitto/acl", str(acl)),
                     ("/var/lib/mosquitto/", f"{folder}/"),
                     ("/etc/mosquitto/ca.crt", str(certs["ca"])),
                     ("/etc/mosquitto/server.crt", str(certs["server"])),
                     ("/etc/mosquitto/server.key", str(certs["server_key"])),
                     ("listener 8883", f"listener {b.port} 127.0.0.1")):
        assert old in text, old
        text = text.replace(old, new)
    b.config.write_text(text)
    return b


def tls_publisher(port: int, certs) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="durable-pub",
                    protocol=mqtt.MQTTv5)
    c.username_pw_set("device", USERS["device"])
    c.tls_set_context(ssl.create_default_context(cafile=str(certs["ca"])))
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_a_backlog_survives_a_stopped_serve_with_the_documented_config(tmp_path):
    why = have_tools() or (None if find_mosquitto() else "mosquitto is not installed")
    if why:
        pytest.skip(why)
    n = int(os.environ.get("TSFLEET_BACKLOG_N", "10000"))
    assert n > 1000  # above mosquitto's stock max_queued_messages
    folder = temp_folder()
    certs = make_certificates(folder)
    broker = documented_broker(certs).start()
    os.environ["TSFLEET_TEST_INGEST_PW"] = USERS["tsfleet"]
    sec = MqttSecurity(username="tsfleet", password_env="TSFLEET_TEST_INGEST_PW",
                       ca_file=str(certs["ca"]))
    url = f"mqtts://127.0.0.1:{broker.port}"
    db = str(tmp_path / "durable.duckdb")
    try:
        RunningServer(db, mqtt=url, security=sec).stop()   # the session exists; serve stops
        pub = tls_publisher(broker.port, certs)
        t0 = time.monotonic()
        for lo in range(0, n, 10_000):  # packet ids wrap at 65,535: publish in windows
            infos = [pub.publish(f"fleet/d-{i % 100}/senml",
                                 b'[{"bn":"d-%d:","bt":%d,"n":"temp","u":"Cel","v":21.5}]'
                                 % (i % 100, T0 + i), qos=1)
                     for i in range(lo, min(n, lo + 10_000))]
            for info in infos:
                info.wait_for_publish(120)
        publish_s = time.monotonic() - t0
        pub.disconnect()
        pub.loop_stop()
        broker.restart()                                     # and the broker restarts too
        t1 = time.monotonic()
        server = Server(ServeConfig(db=db, mqtt=url, security=sec))
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        deadline = time.monotonic() + max(120, n / 500)
        while time.monotonic() < deadline and (
                server.writer is None or server.writer.stats.n_accepted < n):
            time.sleep(0.2)
        drain_s = time.monotonic() - t1
        got = server.writer.stats.n_accepted
        server.stop()
        t.join(120)
        print(f"backlog {n}: published in {publish_s:.1f} s, drained in {drain_s:.1f} s")
        assert got == n, f"{got} of {n} backlog messages arrived"
    finally:
        del os.environ["TSFLEET_TEST_INGEST_PW"]
        broker.close()
        shutil.rmtree(folder, ignore_errors=True)
