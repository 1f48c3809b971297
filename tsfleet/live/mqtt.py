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
import sys
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
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


#: Packets handled per read of the socket, at most (the loop then writes, pings, reads on).
READ_BURST = 1024
_PUBACK = 0x40
_SOCK_READ = 65536


class BulkClient(mqtt.Client):
    """paho's client with bulk reads and coalesced acknowledgements.

    paho 2.x handles one incoming packet per turn of its loop (a ``select`` and the
    loop's bookkeeping each time) and reads every packet with at least three
    ``recv`` calls (its type, its length byte by byte, its body). At thousands of
    small messages a second that loop is the server's bottleneck (profiled under
    ``bench/live.py --source sparkplug``). This subclass changes only how bytes move:

    - the socket is read in chunks of up to 64 KiB and paho's small reads are served
      from that buffer; ``loop_read`` handles up to :data:`READ_BURST` packets, and
      goes on while the buffer still holds bytes (``select`` cannot see them);
    - PUBACKs waiting to go out together leave in one ``send``.

    The protocol logic (sessions, flow control, reconnects, TLS, callbacks) is
    paho's. A lost connection drops the buffer with the socket.
    """

    def __init__(self, *args, **kwargs):
        self._rbuf = b""
        self._rpos = 0
        super().__init__(*args, **kwargs)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _SOCK_READ))
            if len(data) <= bufsize:  # all of it is wanted (or b"": the peer closed)
                return data
            self._rbuf, self._rpos = data, 0
        end = self._rpos + bufsize
        out = self._rbuf[self._rpos:end]
        self._rpos = min(end, len(self._rbuf))
        return out

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        n = 0
        while True:
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
            n += 1
            if n >= READ_BURST and self._rpos >= len(self._rbuf):
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packet_write(self) -> mqtt.MQTTErrorCode:
        q = self._out_packet
        if len(q) > 1 and q[0]["command"] & 0xF0 == _PUBACK and q[0]["pos"] == 0:
            parts = []
            while q and q[0]["command"] & 0xF0 == _PUBACK and q[0]["pos"] == 0 \
                    and len(parts) < 8192:
                parts.append(q.popleft()["packet"])
            merged = b"".join(parts)
            q.appendleft({"command": _PUBACK, "mid": 0, "qos": 1, "pos": 0,
                          "to_process": len(merged), "packet": merged, "info": None})
        return super()._packet_write()


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
