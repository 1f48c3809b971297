"""The bulk MQTT receive path (BulkClient, Subscriber.ack_many) against a real mosquitto on
127.0.0.1: every message arrives whole and in order however the bytes are cut into reads,
a backlog arrives many PUBLISH packets to a read, a QoS 1 message stays the broker's until
its acknowledgement is sent (and one from an earlier connection is never sent), and MQTT 5
properties reach the handler."""

from __future__ import annotations

import os
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tsfleet.live.mqtt import BulkClient, MqttAck, ReceivedMessage, Subscriber

pytestmark = pytest.mark.network


class Received:
    """A handler of Subscriber that keeps each message and its acknowledgement, unsent."""

    def __init__(self):
        self.msgs: list[ReceivedMessage] = []
        self.acks: list[MqttAck | None] = []
        self.cond = threading.Condition()

    def __call__(self, msg, ack) -> None:
        with self.cond:
            self.msgs.append(msg)
            self.acks.append(ack)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.msgs) >= n, timeout), \
                f"received {len(self.msgs)} of {n}"

    def reset(self) -> None:
        with self.cond:
            self.msgs, self.acks = [], []


def publish_all(port: int, messages: list[tuple[str, bytes]], qos: int = 1,
                properties: Properties | None = None) -> None:
    """Publish and wait until the broker has acknowledged every message."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bulk-test-pub",
                    protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(t, p, qos=qos, properties=properties) for t, p in messages]
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()
    c.disconnect()
    c.loop_stop()


def subscriber(port: int, handler, client_id: str = "bulk-test", **kw) -> Subscriber:
    sub = Subscriber("127.0.0.1", port, ["bulk/#"], handler, client_id=client_id,
                     min_backoff=0.1, max_backoff=0.5, **kw)
    sub.start()
    assert sub.subscribed.wait(30), "no SUBACK"
    return sub


def backlog(port: int, messages: list[tuple[str, bytes]], client_id: str = "bulk-test") -> None:
    """Create the persistent session, leave, and publish ``messages`` into it meanwhile."""
    sub = subscriber(port, Received(), client_id)
    sub.stop()
    publish_all(port, messages)


def numbered(n: int, size: int = 40) -> list[tuple[str, bytes]]:
    return [(f"bulk/d{i % 7}/x", i.to_bytes(4, "big") + os.urandom(size)) for i in range(n)]


class CuttingClient(BulkClient):
    """A BulkClient whose socket reads return at most ``cut`` bytes: every packet of any
    size arrives across several reads."""

    cut = 7

    def _sock_recv(self, bufsize: int) -> bytes:
        return super()._sock_recv(min(bufsize, self.cut))


class CountingClient(BulkClient):
    """A BulkClient that counts its socket reads that returned data."""

    n_reads = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        data = super()._sock_recv(bufsize)
        if data:
            CountingClient.n_reads += 1
        return data


def with_client(monkeypatch, cls) -> None:
    monkeypatch.setattr("tsfleet.live.mqtt.BulkClient", cls)


@pytest.mark.parametrize("cut", [1, 7, 1000])
def test_packets_cut_across_reads_arrive_whole_and_in_order(broker, monkeypatch, cut):
    sent = numbered(150) + [("bulk/big", os.urandom(200_000))]  # > one 64 KiB read
    backlog(broker.port, sent)
    monkeypatch.setattr(CuttingClient, "cut", cut)
    with_client(monkeypatch, CuttingClient)
    got = Received()
    sub = subscriber(broker.port, got)
    try:
        got.wait(len(sent))
        assert [(m.topic, m.payload) for m in got.msgs] == sent
        assert all(m.qos == 1 and isinstance(a, MqttAck) for m, a in zip(got.msgs, got.acks,
                                                                            strict=True))
        sub.ack_many(got.acks)
    finally:
        sub.stop()


def test_a_backlog_arrives_many_publish_packets_to_a_read(broker, monkeypatch):
    sent = numbered(800)
    backlog(broker.port, sent)
    with_client(monkeypatch, CountingClient)
    CountingClient.n_reads = 0
    got = Received()
    sub = subscriber(broker.port, got)
    try:
        got.wait(len(sent))
        assert [(m.topic, m.payload) for m in got.msgs] == sent
        # 800 packets of ~55 bytes: a handful of 64 KiB reads, not one (or three) per packet
        assert CountingClient.n_reads < 200, CountingClient.n_reads
        sub.ack_many(got.acks)
    finally:
        sub.stop()


def test_qos1_stays_with_the_broker_until_acknowledged(broker):
    sent = numbered(300)
    backlog(broker.port, sent)
    got = Received()
    sub = subscriber(broker.port, got)
    got.wait(len(sent))
    sub.stop()  # nothing acknowledged: a crash before the commit
    first = got.msgs

    got.reset()
    sub = subscriber(broker.port, got)
    got.wait(len(sent))  # the broker delivers every message again ...
    assert [(m.topic, m.payload) for m in got.msgs] == [(m.topic, m.payload) for m in first]
    assert all(m.dup for m in got.msgs)  # ... as redeliveries
    time.sleep(0.3)
    assert len(got.msgs) == len(sent)
    # the commit: half of the messages acknowledged one write at a time, the rest together
    for ack in got.acks[:150]:
        ack()
    sub.ack_many(got.acks[150:])
    time.sleep(0.5)  # the PUBACKs leave
    sub.stop()

    got.reset()
    sub = subscriber(broker.port, got)
    try:
        time.sleep(1.0)
        assert got.msgs == []  # nothing left to redeliver
    finally:
        sub.stop()


def test_an_acknowledgement_of_an_earlier_connection_is_never_sent(broker):
    sent = numbered(20)
    backlog(broker.port, sent)
    got = Received()
    sub = subscriber(broker.port, got)
    got.wait(len(sent))
    stale = list(got.acks)
    sub.client.socket().shutdown(socket.SHUT_RDWR)  # the connection is lost; paho reconnects
    deadline = time.monotonic() + 30
    while sub.n_connects < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sub.n_connects == 2
    got.wait(2 * len(sent))  # redelivered on the new connection, packet ids reused
    sub.ack_many(stale)  # must not acknowledge the new connection's messages
    time.sleep(0.5)
    sub.stop()

    got.reset()
    sub = subscriber(broker.port, got)
    try:
        got.wait(len(sent))  # all still the broker's
        assert sorted(m.payload for m in got.msgs) == sorted(p for _, p in sent)
        sub.ack_many(got.acks)
    finally:
        sub.stop()


def test_mqtt5_properties_and_qos0_reach_the_handler(broker):
    got = Received()
    sub = subscriber(broker.port, got)
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/senml+json"
        props.UserProperty = [("site", "hall-2"), ("gw", "g-7")]
        props.MessageExpiryInterval = 3600
        publish_all(broker.port, [("bulk/p/senml", b"[1]")], properties=props)
        publish_all(broker.port, [("bulk/q0", b"zero")], qos=0)
        got.wait(2)
        m, m0 = got.msgs
        assert m.properties.ContentType == "application/senml+json"
        assert m.properties.UserProperty == [("site", "hall-2"), ("gw", "g-7")]
        assert 3590 <= m.properties.MessageExpiryInterval <= 3600
        assert (m.topic, m.payload, m.qos, m.dup, m.retain) == ("bulk/p/senml", b"[1]", 1,
                                                                False, False)
        assert m.info.mid == m.mid > 0
        assert (m0.topic, m0.payload, m0.qos, got.acks[1]) == ("bulk/q0", b"zero", 0, None)
        sub.ack_many([got.acks[0]])
    finally:
        sub.stop()


def test_mqtt311_session_is_read_too(broker):
    """The bulk reader parses MQTT 3.1.1 PUBLISH packets (no properties) as well."""
    got: list[ReceivedMessage] = []
    done = threading.Event()
    c = BulkClient(mqtt.CallbackAPIVersion.VERSION2, client_id="bulk-311",
                   protocol=mqtt.MQTTv311, manual_ack=True)
    c.on_connect = lambda client, *a: client.subscribe("bulk/#", qos=1)
    c.on_subscribe = lambda *a: done.set()
    c.on_message = lambda client, userdata, msg: got.append(msg)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        assert done.wait(30)
        sent = numbered(50)
        publish_all(broker.port, sent)
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(m.topic, m.payload) for m in got] == sent
        assert all(m.properties is None for m in got)
        c.send_acks([m.mid for m in got])
    finally:
        c.disconnect()
        c.loop_stop()


def test_bytes_after_a_disconnect_are_not_kept_for_the_next_connection():
    """A DISCONNECT from the broker closes the socket in the middle of a read: what
    followed it in that read must not be prepended to the next connection's bytes."""
    c = BulkClient(mqtt.CallbackAPIVersion.VERSION2, client_id="bulk-dc",
                   protocol=mqtt.MQTTv5, manual_ack=True)
    got = []
    c.on_message = lambda client, userdata, msg: got.append(msg)
    a, b = socket.socketpair()
    try:
        c._sock = a
        publish = b"\x30\x07\x00\x03a/b" + b"\x00" + b"x"  # QoS 0, no properties, b"x"
        c._handle_buffer(publish + b"\xe0\x00" + publish + b"\x30", 0.0)
        assert [(m.topic, m.payload) for m in got] == [("a/b", b"x")]
        assert c._sock is None and c._rbuf == b""
    finally:
        b.close()
