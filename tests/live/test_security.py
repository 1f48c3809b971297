"""MQTT security of ``tsfleet serve`` against a real mosquitto: users and passwords, an
ACL, TLS with a client certificate, the server name check, and loud broker failures."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tsfleet import Fleet
from tsfleet.errors import InvalidParameter
from tsfleet.live.broker import find_mosquitto, free_port
from tsfleet.live.security import MqttSecurity, parse_broker
from tsfleet.live.server import BrokerUnavailable, ServeConfig, Server, store_client_id

from .live_support import T0, senml_json
from .secure_support import USERS, SecureBroker, have_tools, make_certificates, temp_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs():
    why = have_tools() or (None if find_mosquitto() else "mosquitto is not installed")
    if why:
        pytest.skip(why)
    folder = temp_folder()
    yield make_certificates(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def sbroker(certs):
    b = SecureBroker(certs).start()
    yield b
    b.close()


class Records(logging.Handler):
    """Collects the connection log of ``tsfleet.live.broker`` with arrival times."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.items: list[tuple[float, str]] = []
        self.mu = threading.Lock()

    def emit(self, record):
        with self.mu:
            self.items.append((time.monotonic(), record.getMessage()))

    def wait(self, text: str, timeout: float = 5.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.mu:
                hit = next((i for i in self.items if text in i[1]), None)
            if hit:
                return hit
            time.sleep(0.02)
        raise AssertionError(f"no log line with {text!r} within {timeout} s: "
                             f"{[m for _, m in self.items]}")


@pytest.fixture
def records():
    h = Records()
    lg = logging.getLogger("tsfleet.live.broker")
    old = lg.level
    lg.setLevel(logging.INFO)
    lg.addHandler(h)
    yield h
    lg.removeHandler(h)
    lg.setLevel(old)


def start(db: str, mqtt_url: str, security: MqttSecurity | None, **options) -> tuple:
    server = Server(ServeConfig(db=db, mqtt=mqtt_url, security=security,
                                batch_delay_s=0.1, **options))
    t = threading.Thread(target=server.run, daemon=True)
    t0 = time.monotonic()
    t.start()
    assert server.ready.wait(30)
    return server, t, t0


def stop(server: Server, t: threading.Thread) -> None:
    server.stop()
    t.join(60)
    assert not t.is_alive()


def device_publisher(port: int, *, certs=None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{port}-{time.time()}")
    c.username_pw_set("device", USERS["device"])
    if certs:
        ctx = ssl.create_default_context(cafile=str(certs["ca"]))
        ctx.load_cert_chain(str(certs["client"]), str(certs["client_key"]))
        c.tls_set_context(ctx)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def pack(device: str, i: int) -> bytes:
    return senml_json([{"bn": f"{device}:", "bt": T0 + 60 * i, "n": "temp", "u": "Cel",
                        "v": 20.0 + i}])


def publish_and_read(server, port, certs, n=5, device="sec-1") -> int:
    pub = device_publisher(port, certs=certs)
    try:
        for i in range(n):
            pub.publish(f"fleet/{device}/senml", pack(device, i), qos=1).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.writer.sync(30)
        if server.writer.stats.n_accepted >= n:
            break
        time.sleep(0.1)
    return server.writer.stats.n_accepted


def test_broker_url_forms():
    assert parse_broker("mqtts://127.0.0.1:8884") == ("127.0.0.1", 8884, True)
    assert parse_broker("mqtt://h") == ("h", 1883, False)
    assert parse_broker("[::1]:1884") == ("::1", 1884, False)
    with pytest.raises(InvalidParameter, match="mqtts://"):
        parse_broker("http://h:80")


def test_tls_with_client_certificate_and_password_file_stores_readings(sbroker, certs, tmp_path,
                                                                        records):
    pw = tmp_path / "mqtt.pw"
    pw.write_text(USERS["tsfleet"] + "\n")
    sec = MqttSecurity(username="tsfleet", password_file=str(pw), ca_file=str(certs["ca"]),
                       cert_file=str(certs["client"]), key_file=str(certs["client_key"]))
    server, t, _ = start(str(tmp_path / "a.duckdb"), f"mqtts://127.0.0.1:{sbroker.tls_port}", sec)
    try:
        assert server.subscriber.subscribed.wait(20), records.items
        assert publish_and_read(server, sbroker.tls_port, certs) == 5
        _, line = records.wait("connected to 127.0.0.1")
        assert "new session" in line and server.client_id in line
    finally:
        stop(server, t)
    with Fleet(str(tmp_path / "a.duckdb")) as f:
        assert f.query("select count(*) as n from readings where device_id = 'sec-1'")[0]["n"] == 5


def test_password_from_environment_and_session_resumed_on_restart(sbroker, tmp_path, records,
                                                                    monkeypatch):
    monkeypatch.setenv("TSFLEET_TEST_MQTT_PW", USERS["tsfleet"])
    sec = MqttSecurity(username="tsfleet", password_env="TSFLEET_TEST_MQTT_PW")
    db = str(tmp_path / "b.duckdb")
    url = f"127.0.0.1:{sbroker.port}"
    server, t, _ = start(db, url, sec)
    assert server.subscriber.subscribed.wait(20), records.items
    first_id = server.client_id
    stop(server, t)
    records.items.clear()
    # while serve is down, the broker queues for its session; the restart resumes it
    pub = device_publisher(sbroker.port)
    pub.publish("fleet/sec-2/senml", pack("sec-2", 1), qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    server, t, _ = start(db, url, sec)
    try:
        _, line = records.wait("session resumed", 10)
        assert server.client_id == first_id
        assert publish_and_read(server, sbroker.port, None, n=0) >= 0
        deadline = time.monotonic() + 20
        while server.writer.stats.n_accepted < 1 and time.monotonic() < deadline:
            server.writer.sync(10)
            time.sleep(0.1)
        assert server.writer.stats.n_accepted == 1
    finally:
        stop(server, t)


def test_wrong_password_is_logged_with_its_reason_within_5_s(sbroker, tmp_path, records,
                                                            monkeypatch):
    monkeypatch.setenv("TSFLEET_TEST_MQTT_PW", "wrong")
    sec = MqttSecurity(username="tsfleet", password_env="TSFLEET_TEST_MQTT_PW")
    server, t, t0 = start(":memory:", f"127.0.0.1:{sbroker.port}", sec)
    try:
        at, line = records.wait("refused the connection", 5)
        assert "Bad user name or password" in line or "Not authorized" in line, line
        assert at - t0 < 5
    finally:
        stop(server, t)


@pytest.mark.parametrize("case", ["wrong_ca", "other_name"])
def test_tls_failures_are_logged_within_5_s(sbroker, certs, records, case):
    ca = certs["other_ca"] if case == "wrong_ca" else certs["ca"]
    port = sbroker.tls_port if case == "wrong_ca" else sbroker.other_port
    sec = MqttSecurity(username="tsfleet", password_env=None, ca_file=str(ca),
                       cert_file=str(certs["client"]), key_file=str(certs["client_key"]))
    server, t, t0 = start(":memory:", f"mqtts://127.0.0.1:{port}", sec)
    try:
        at, line = records.wait("TLS failure", 5)
        assert "certificate was not accepted" in line, line
        expected = ("self-signed", "issuer") if case == "wrong_ca" else ("mismatch",)
        assert any(e in line.lower() for e in expected), line
        assert at - t0 < 5
        assert not server.subscriber.connected.is_set()
    finally:
        stop(server, t)


def test_tls_to_a_plain_port_is_named(sbroker, records):
    server, t, t0 = start(":memory:", f"mqtts://127.0.0.1:{sbroker.port}", None)
    try:
        at, line = records.wait("TLS failure", 5)
        assert "is the port a TLS listener?" in line and at - t0 < 5
    finally:
        stop(server, t)


def test_server_name_check_can_be_turned_off_but_the_chain_is_still_checked(sbroker, certs,
                                                                           monkeypatch, records):
    monkeypatch.setenv("TSFLEET_TEST_MQTT_PW", USERS["tsfleet"])
    sec = MqttSecurity(username="tsfleet", password_env="TSFLEET_TEST_MQTT_PW",
                       ca_file=str(certs["ca"]), check_hostname=False)
    server, t, _ = start(":memory:", f"mqtts://127.0.0.1:{sbroker.other_port}", sec)
    try:
        assert server.subscriber.subscribed.wait(20), records.items
    finally:
        stop(server, t)


def test_nothing_listening_is_logged_and_exit_on_broker_failure_raises(records):
    port = free_port()
    server = Server(ServeConfig(db=":memory:", mqtt=f"127.0.0.1:{port}",
                                exit_on_broker_failure_s=2.0))
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"within 2 s: connection to 127.0.0.1:\d+ refused"):
        server.run()
    assert time.monotonic() - t0 < 10
    at, _ = records.wait("no broker listens there", 0.1)
    assert at - t0 < 5
    # reconnects back off (0.5 s, 1 s, 2 s, ...): a handful of attempts in 2 s, not hundreds
    assert 2 <= server.subscriber.n_failures <= 5, server.subscriber.n_failures


def test_cli_exit_on_broker_failure_is_one_line_and_status_2(sbroker, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TSFLEET_TEST_MQTT_PW": "wrong"}
    r = subprocess.run(
        [sys.executable, "-m", "tsfleet", "serve", "--db", str(tmp_path / "c.duckdb"),
         "--mqtt", f"127.0.0.1:{sbroker.port}", "--mqtt-username", "tsfleet",
         "--mqtt-password-env", "TSFLEET_TEST_MQTT_PW", "--exit-on-broker-failure", "3"],
        capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") or "no MQTT connection" in last, r.stderr
    assert "Bad user name or password" in r.stderr or "Not authorized" in r.stderr
    assert "Traceback" not in r.stderr


def test_password_problems_fail_before_start(tmp_path):
    with pytest.raises(InvalidParameter, match="TSFLEET_NOT_SET"):
        Server(ServeConfig(db=":memory:", mqtt="127.0.0.1:1",
                           security=MqttSecurity(username="u", password_env="TSFLEET_NOT_SET")))
    with pytest.raises(InvalidParameter, match="does not exist"):
        Server(ServeConfig(db=":memory:", mqtt="mqtts://127.0.0.1:1",
                           security=MqttSecurity(ca_file=str(tmp_path / "none.crt"))))


def test_default_client_id_is_the_stores_own(tmp_path, sbroker, records, monkeypatch):
    a, b = str(tmp_path / "one.duckdb"), str(tmp_path / "two.duckdb")
    with Fleet(a) as fa, Fleet(b) as fb:
        ida, idb = store_client_id(fa), store_client_id(fb)
    with Fleet(a) as fa:
        assert store_client_id(fa) == ida
    assert ida != idb and ida.startswith("tsfleet-")


def test_session_takeover_is_logged_with_its_reason(sbroker, records, monkeypatch):
    monkeypatch.setenv("TSFLEET_TEST_MQTT_PW", USERS["tsfleet"])
    sec = MqttSecurity(username="tsfleet", password_env="TSFLEET_TEST_MQTT_PW")
    url = f"127.0.0.1:{sbroker.port}"
    one, t1, _ = start(":memory:", url, sec, client_id="tsfleet-shared")
    assert one.subscriber.subscribed.wait(20)
    t0 = time.monotonic()
    two, t2, _ = start(":memory:", url, sec, client_id="tsfleet-shared")
    try:
        at, line = records.wait("taken over by another client", 5)
        assert "tsfleet-shared" in line and "--client-id" in line
        assert at - t0 < 5
    finally:
        stop(one, t1)
        stop(two, t2)


def test_security_settings_refused_with_one_line_reasons(tmp_path, certs, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text("")
    monkeypatch.setenv("TSFLEET_TEST_PW", "x")
    cases = [
        (MqttSecurity(username="u", password_file=str(pw), password_env="TSFLEET_TEST_PW"),
         "not both"),
        (MqttSecurity(username="u", password_file=str(pw)), "is empty"),
        (MqttSecurity(username="u", password_file=str(tmp_path / "none")), "cannot read"),
        (MqttSecurity(password_env="TSFLEET_TEST_PW"), "needs a user name"),
        (MqttSecurity(key_file=str(certs["client_key"])), "needs its certificate"),
        (MqttSecurity(ca_file=str(pw)), "cannot be used"),
        (MqttSecurity(cert_file=str(certs["client"]), key_file=str(certs["server_key"])),
         "cannot be used"),
    ]
    for sec, message in cases:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="x")
        with pytest.raises(InvalidParameter, match=message):
            sec.apply(client)
    for text in ("h:0", "h:99999", "h:port"):
        with pytest.raises(InvalidParameter):
            parse_broker(text)
    d = MqttSecurity(username="u", ca_file="ca", check_hostname=False).describe()
    assert d == "user u, TLS (server name not checked)"


def test_two_stores_on_one_broker_each_get_every_message(broker, tmp_path, records):
    """The issue's case: two serve processes with default client ids took the session from
    each other and both stores got partial copies. Now each store has its own session."""
    one, t1, _ = start(str(tmp_path / "one.duckdb"), f"127.0.0.1:{broker.port}", None)
    two, t2, _ = start(str(tmp_path / "two.duckdb"), f"127.0.0.1:{broker.port}", None)
    try:
        assert one.subscriber.subscribed.wait(20) and two.subscriber.subscribed.wait(20)
        assert one.client_id != two.client_id
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="two-stores-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for i in range(20):
            pub.publish("fleet/both/senml", pack("both", i), qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and min(
                s.writer.stats.n_accepted for s in (one, two)) < 20:
            time.sleep(0.1)
        assert [s.writer.stats.n_accepted for s in (one, two)] == [20, 20]
        assert [s.subscriber.n_connects for s in (one, two)] == [1, 1]
        assert not [m for _, m in records.items if "taken over" in m]
    finally:
        stop(one, t1)
        stop(two, t2)
