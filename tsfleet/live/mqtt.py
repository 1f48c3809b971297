"""MQTT subscriber: paho-mqtt 2.x, QoS 1, persistent session, ack after commit.

The client speaks MQTT 5 with ``clean_start=False`` and a session expiry, so
the broker keeps the subscription and queues messages while tsfleet is down.
``manual_ack=True``: paho does not acknowledge a message on receipt; the
writer calls :meth:`Subscriber.ack` once the batch holding it is committed.
An acknowledgement from a previous connection is never sent on a new one
(packet ids restart): the broker redelivers that message instead, and the
store absorbs the duplicate. paho reconnects by itself, with a backoff from
``min_backoff`` to ``max_backoff`` seconds.

The broker must let enough unacknowledged messages be in flight to fill a
batch: the client announces ``receive_maximum`` (MQTT 5 Receive Maximum);
for mosquitto also raise ``max_queued_messages`` so that a backlog built up
while tsfleet is down is not dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("tsfleet.live")


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` -> (host, port).

    >>> parse_address("127.0.0.1:1883", 1)
    ('127.0.0.1', 1883)
    """
    from tsfleet.errors import InvalidParameter

    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        return host or "127.0.0.1", int(port) if port else default_port
    except ValueError:
        raise InvalidParameter(f"expected host:port, got {text!r}") from None


class Subscriber:
    """Receives messages of ``topics`` and hands each to ``handler(msg, ack)``."""

    def __init__(self, host: str, port: int, topics: list[str],
                 handler: Callable[[mqtt.MQTTMessage, Callable[[], None]], None], *,
                 client_id: str = "tsfleet-serve", session_expiry_s: int = 7 * 86400,
                 receive_maximum: int = 4000, max_packet: int | None = None,
                 keepalive: int = 30,
                 min_backoff: float = 0.5, max_backoff: float = 30.0):
        self.host, self.port, self.topics = host, port, topics
        self.handler = handler
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.max_packet = max_packet
        self.keepalive = keepalive
        self.subscribed = threading.Event()
        self.n_connects = 0
        self._generation = 0
        self._stopping = False
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        self.client.reconnect_delay_set(min_delay=min_backoff, max_delay=max_backoff)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        if self.max_packet is not None:  # the broker discards larger packets (MQTT 5 3.1.2.11.4)
            props.MaximumPacketSize = self.max_packet
        self.client.connect_async(self.host, self.port, self.keepalive, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect (acknowledgements already queued go out first) and end the loop."""
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (network thread) ----------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("live: MQTT connect to %s:%d refused: %s", self.host, self.port,
                        reason_code)
            return
        with self._lock:
            self._generation += 1
        self.n_connects += 1
        log.info("live: MQTT connected to %s:%d (session present: %s)", self.host, self.port,
                 flags.session_present)
        client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self._generation += 1
        self.subscribed.clear()
        if self._stopping:
            return
        log.warning("live: MQTT disconnected from %s:%d (%s); reconnecting", self.host, self.port,
                    reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties) -> None:
        bad = [str(rc) for rc in reason_code_list if rc.is_failure]
        if bad:
            log.error("live: MQTT subscription refused: %s", ", ".join(bad))
            return
        log.info("live: MQTT subscribed to %s with QoS 1", ", ".join(self.topics))
        self.subscribed.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        generation = self._generation
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            if qos == 0:
                return
            with self._lock:
                if generation == self._generation:
                    client.ack(mid, qos)

        self.handler(msg, ack)
