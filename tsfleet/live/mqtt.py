"""MQTT subscriber: paho-mqtt 2.x, QoS 1, persistent session, ack after commit.

The client speaks MQTT 5 with ``clean_start=False`` and a session expiry, so
the broker keeps the subscription and queues messages while tsfleet is down.
Nothing is acknowledged on receipt: each QoS 1 message comes with a
:class:`MqttAck`, and the writer acknowledges a batch's messages with one
:meth:`Subscriber.ack_many` per subscriber once the batch is committed.
Messages are received by :class:`BulkClient` (paho's client, with PUBLISH
packets parsed in bulk from the socket buffer).
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
import struct
import sys
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("tsfleet.live")
#: Connection events (connected, session resumed or new, refused, TLS failure,
#: session taken over): ``tsfleet serve`` shows them even without ``-v``.
conn_log = logging.getLogger("tsfleet.live.broker")

#: Connections lost this often within this many seconds look like a session takeover.
TAKEOVER_WINDOW_S = 30.0

#: MQTT 5 reason codes of a refused CONNECT, with what to check.
_REFUSED_HINTS = {
    134: "check --mqtt-username and the password",           # Bad user name or password
    135: "the broker does not authorize this client",        # Not authorized
    133: "the broker refused the client id",                 # Client Identifier not valid
    138: "the client is banned",                             # Banned
    136: "the broker is unavailable",                        # Server unavailable
    137: "the broker is busy",                               # Server busy
}


#: Bytes asked of the socket per read (more when a packet being received is larger).
_SOCK_READ = 65536
_PUBLISH = 0x30
_PUBACK = 0x40


class ReceivedMessage:
    """One PUBLISH as :class:`BulkClient` parsed it: what ``on_message`` reads of paho's
    ``MQTTMessage`` (``topic``, ``payload``, ``qos``, ``mid``, ``dup``, ``retain``,
    ``timestamp``), with ``properties`` and ``info`` built only when asked for.

    >>> m = ReceivedMessage(b"fleet/a/senml", b"[]", 1, 7, False, False, b"\\x00", 0.0)
    >>> (m.topic, m.payload, m.qos, m.mid, len(m.properties.json()))
    ('fleet/a/senml', b'[]', 1, 7, 0)
    """

    __slots__ = ("_topic", "payload", "qos", "mid", "dup", "retain", "timestamp", "_props",
                 "_properties")

    def __init__(self, topic: bytes, payload: bytes, qos: int, mid: int, dup: bool,
                 retain: bool, props: bytes | None, timestamp: float):
        self._topic, self.payload, self.qos, self.mid = topic, payload, qos, mid
        self.dup, self.retain, self.timestamp = dup, retain, timestamp
        self._props = props              # MQTT 5: the raw properties, length first
        self._properties: Properties | None = None

    @property
    def topic(self) -> str:
        """The topic (raises ``UnicodeDecodeError`` when it is not UTF-8, as paho's does)."""
        return self._topic.decode("utf-8")

    @property
    def properties(self) -> Properties | None:
        """MQTT 5 properties (parsed on first use), None on MQTT 3.1.1."""
        if self._properties is None and self._props is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.unpack(self._props)
            self._properties = props
        return self._properties

    @property
    def info(self) -> mqtt.MQTTMessageInfo:
        return mqtt.MQTTMessageInfo(self.mid)


class BulkClient(mqtt.Client):
    """paho's client, with the incoming PUBLISH packets parsed in bulk and PUBACKs sent
    many at a time.

    paho 2.x reads every packet with at least three ``recv`` calls and builds an
    ``MQTTMessage``, a ``Properties`` object and an ``MQTTMessageInfo`` per message: at
    thousands of small messages a second that per-message Python is the server's
    bottleneck (profiled under ``bench/live.py --source sparkplug``; measured by
    ``bench/mqtt_receive.py``). Here :meth:`loop_read` reads up to 64 KiB at once,
    parses every complete QoS 0 and QoS 1 PUBLISH in it into a :class:`ReceivedMessage`
    and hands it to ``on_message``; any other packet (CONNACK, SUBACK, PINGRESP, a QoS 2
    PUBLISH, ...) goes to paho's own handling, and a packet cut by the end of a read
    waits in the buffer for the next. :meth:`send_acks` queues the PUBACKs of a commit
    as one write. Sessions, flow control, keepalive, reconnects, TLS (reads go through
    paho's ``_sock_recv``) and every callback but ``on_message``'s dispatch stay
    paho's. A lost connection drops the buffer with the socket.

    ``message_callback_add`` is honoured by handing PUBLISH packets to paho as before.
    """

    def __init__(self, *args, **kwargs):
        self._rbuf = b""
        self._need = 0          # bytes of the packet the buffer begins with (0: unknown)
        self._filtered = False  # message_callback_add was used: paho dispatches PUBLISH
        super().__init__(*args, **kwargs)

    def message_callback_add(self, sub: str, callback) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _sock_close(self) -> None:
        self._rbuf, self._need = b"", 0
        super()._sock_close()

    def send_acks(self, mids: list[int]) -> None:
        """Queue the PUBACKs of ``mids`` (QoS 1 messages of the current connection) as
        one packet buffer: one write for a whole commit."""
        if mids:
            # a PUBACK is 0x40, remaining length 2, the packet id: one big-endian uint32
            data = struct.pack(f"!{len(mids)}I", *[0x40020000 | mid for mid in mids])
            self._packet_queue(_PUBACK, data, 0, 1)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            data = self._sock_recv(max(_SOCK_READ, self._need - len(self._rbuf)))
        except BlockingIOError:
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        buf = self._rbuf + data if self._rbuf else data
        self._rbuf = b""
        rc = self._handle_buffer(buf, time.time())
        if rc:
            return self._loop_rc_handle(rc)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_buffer(self, buf: bytes, now: float) -> mqtt.MQTTErrorCode:
        """Handle every complete packet of ``buf``; keep the incomplete rest for the next read."""
        n, pos = len(buf), 0
        sock = self._sock  # a packet handled here may close it (a DISCONNECT from the broker)
        v5 = self._protocol == mqtt.MQTTv5
        fast = not self._filtered
        with self._callback_mutex:
            on_message = self.on_message
        try:
            while pos < n:
                cmd = buf[pos]
                # remaining length: 1 to 4 bytes of 7 bits, least significant first
                i, length, shift = pos + 1, 0, 0
                while True:
                    if i >= n:
                        self._need = 0
                        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
                    byte = buf[i]
                    length |= (byte & 0x7F) << shift
                    i += 1
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
                end = i + length
                if end > n:
                    self._need = end - pos
                    return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
                qos = (cmd >> 1) & 3
                if fast and cmd & 0xF0 == _PUBLISH and qos < 2:
                    # topic length, topic, packet id (QoS 1), properties (MQTT 5), payload
                    j = i + 2 + (buf[i] << 8 | buf[i + 1])
                    topic = buf[i + 2:j]
                    mid = 0
                    if qos:
                        mid = buf[j] << 8 | buf[j + 1]
                        j += 2
                    props = None
                    if v5:
                        k, plen, shift = j, 0, 0
                        while k < end:
                            byte = buf[k]
                            plen |= (byte & 0x7F) << shift
                            k += 1
                            if not byte & 0x80 or shift > 14:
                                break
                            shift += 7
                        props = buf[j:k + plen]
                        j = k + plen
                    if j > end or (not topic and not v5):
                        self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed PUBLISH")
                        return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
                    msg = ReceivedMessage(topic, buf[j:end], qos, mid, bool(cmd & 8),
                                          bool(cmd & 1), props, now)
                    pos = end
                    if on_message is not None:
                        with self._in_callback_mutex:
                            on_message(self, self._userdata, msg)
                    continue
                pos = end
                rc = self._handle_other(cmd, buf[i:end])
                if rc or self._sock is not sock:
                    return rc
            self._need = 0
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            # what is left belongs to this connection only: never to the next one
            self._rbuf = buf[pos:] if pos < n and self._sock is sock else b""

    def _handle_other(self, cmd: int, body: bytes) -> mqtt.MQTTErrorCode:
        """One packet the fast path does not take, through paho's own handler."""
        self._in_packet = {"command": cmd, "have_remaining": 1, "remaining_count": [],
                           "remaining_mult": 1, "remaining_length": len(body),
                           "packet": bytearray(body), "to_process": 0, "pos": 0}
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [],
                               "remaining_mult": 1, "remaining_length": 0,
                               "packet": bytearray(b""), "to_process": 0, "pos": 0}


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` -> (host, port); a port outside 0..65535 is an InvalidParameter.

    >>> parse_address("127.0.0.1:1883", 1)
    ('127.0.0.1', 1883)
    """
    from tsfleet.errors import InvalidParameter

    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise InvalidParameter(f"expected host:port, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise InvalidParameter(f"a port is within 0..65535, got {number} in {text!r}")
    return host or "127.0.0.1", number


class Subscriber:
    """Receives messages of ``topics`` and hands each to ``handler(msg, ack)``; ``ack`` is
    None for a QoS 0 message, else a :class:`MqttAck` to call after the commit."""

    def __init__(self, host: str, port: int, topics: list[str],
                 handler: Callable[[ReceivedMessage, MqttAck | None], None], *,
                 client_id: str = "tsfleet-serve", session_expiry_s: int = 7 * 86400,
                 receive_maximum: int = 4000, max_packet: int | None = None,
                 keepalive: int = 30,
                 min_backoff: float = 0.5, max_backoff: float = 30.0,
                 security=None):
        self.host, self.port, self.topics = host, port, topics
        self.client_id = client_id
        #: set once a connection was accepted and subscribed (``--exit-on-broker-failure``)
        self.connected = threading.Event()
        #: the last reason a connection failed or was lost (None while all is well)
        self.last_error: str | None = None
        self.n_failures = 0
        self.session_resumed: bool | None = None
        self._last_logged: tuple[str, float] = ("", 0.0)
        self._lost_at: list[float] = []  # recent connections lost right after being accepted
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
        self.client = BulkClient(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        self.client.reconnect_delay_set(min_delay=min_backoff, max_delay=max_backoff)
        self.tls = security is not None and security.uses_tls
        if security is not None:
            security.apply(self.client)
        self.client.on_connect_fail = self._on_connect_fail
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
    def _failed(self, reason: str, then: str = "retrying with backoff") -> None:
        """Record and log a failure; the same reason again is logged at most every 60 s."""
        self.last_error = reason
        self.n_failures += 1
        now = time.monotonic()
        if self._last_logged[0] != reason or now - self._last_logged[1] >= 60.0:
            self._last_logged = (reason, now)
            conn_log.error("live: MQTT %s; %s", reason, then)

    def _on_connect_fail(self, client, userdata) -> None:
        from tsfleet.live.security import describe_connect_error

        # paho calls this inside its ``except OSError`` block: the error is the current one
        self._failed(describe_connect_error(sys.exc_info()[1], self.host, self.port, self.tls))

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            hint = _REFUSED_HINTS.get(reason_code.value, "")
            self._failed(f"broker at {self.host}:{self.port} refused the connection of client "
                         f"id {self.client_id}: {reason_code}" + (f" ({hint})" if hint else ""))
            return
        with self._lock:
            self._generation += 1
        self.n_connects += 1
        resumed = bool(flags.session_present)
        first = self.session_resumed is None
        self.session_resumed = resumed
        self.last_error = None
        conn_log.info(
            "live: MQTT connected to %s:%d as client id %s: %s", self.host, self.port,
            self.client_id,
            "session resumed (messages queued while away are delivered now)" if resumed else
            "new session" + (" (nothing was queued for this client id before)" if first else
                             " (the broker had lost the session: messages sent meanwhile "
                             "were not queued)"))
        client.subscribe([(t, 1) for t in self.topics])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self._generation += 1
        self.subscribed.clear()
        if self._stopping:
            return
        if getattr(reason_code, "value", None) == 142:  # Session taken over
            self._failed(f"session of client id {self.client_id} taken over by another client "
                         f"at {self.host}:{self.port}: two processes use one client id (give "
                         f"each its own --client-id)")
            return
        # mosquitto 2.0 closes a taken-over session's socket without a DISCONNECT
        # (paho says "Unspecified error"): a connection lost again and again although
        # the broker accepts every reconnect is the same sign.
        now = time.monotonic()
        self._lost_at = [t for t in self._lost_at if now - t < TAKEOVER_WINDOW_S] + [now]
        if len(self._lost_at) >= 2:
            self._failed(f"session of client id {self.client_id} probably taken over by "
                         f"another client at {self.host}:{self.port}: the connection was lost "
                         f"{len(self._lost_at)} times in {TAKEOVER_WINDOW_S:g} s though each "
                         f"reconnect is accepted ({reason_code}); two processes use one client "
                         f"id? (give each its own --client-id)")
            return
        self._failed(f"disconnected from {self.host}:{self.port} ({reason_code})")

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties) -> None:
        bad = [f"{t}: {rc}" for t, rc in zip(self.topics, reason_code_list, strict=False)
               if rc.is_failure]
        if bad:
            self._failed(f"subscription refused by {self.host}:{self.port} ({', '.join(bad)}; "
                         f"check the broker's ACL for this user)", then="nothing is received")
            return
        log.info("live: MQTT subscribed to %s with QoS 1", ", ".join(self.topics))
        self.subscribed.set()
        self.connected.set()

    def _on_message(self, client, userdata, msg: ReceivedMessage) -> None:
        self.handler(msg, MqttAck(self, self._generation, msg.mid) if msg.qos == 1 else None)

    # -- acknowledgements (the writer's thread) ---------------------------------------------
    def ack_many(self, acks: list[MqttAck]) -> None:
        """Acknowledge messages of a committed batch: their PUBACKs leave in one write.
        An acknowledgement from an earlier connection is dropped (packet ids restart on
        a new one; the broker redelivers that message instead)."""
        with self._lock:
            generation = self._generation
            mids = [a.mid for a in acks if a.generation == generation]
            if mids:
                self.client.send_acks(mids)


class MqttAck:
    """The acknowledgement of one QoS 1 message, to call once its batch is committed.

    Calling it acknowledges this message alone; a writer holding many calls
    ``sink.ack_many(acks)`` once per subscriber instead (``sink`` is the
    :class:`Subscriber`)."""

    __slots__ = ("sink", "generation", "mid")

    def __init__(self, sink: Subscriber, generation: int, mid: int):
        self.sink, self.generation, self.mid = sink, generation, mid

    def __call__(self) -> None:
        self.sink.ack_many([self])
