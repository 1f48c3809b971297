"""Helpers of the hostile-input tests: ``tsfleet serve`` as a child process, a
broker whose message store count tells when the server has acknowledged
everything, a fast QoS 1 publisher and a concurrent CoAP client."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiocoap
import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tsfleet.live.broker import LocalBroker

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "README.md", ROOT / "docs" / "live.md")


def documented_reasons() -> set[str]:
    """The codes the README and docs/live.md list (every `code` in backticks)."""
    return {c for p in DOCS for c in re.findall(r"`([a-z_]+)`", p.read_text())}


class CountingBroker(LocalBroker):
    """mosquitto that publishes ``$SYS`` every second: the messages in its store less
    the retained ones (its own ``$SYS`` topics) are the QoS 1 messages queued or in
    flight; 0 once the subscriber has acknowledged everything."""

    def __init__(self):
        super().__init__(persistence=False)
        self.config.write_text(self.config.read_text() + "sys_interval 1\n")
        self.counts = {"store": -1, "retained": -1}
        self._watch = None

    @property
    def queued(self) -> int:
        return self.counts["store"] - self.counts["retained"]

    def watch(self) -> None:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-sys-watch")

        def on_message(client, userdata, msg):
            key = "store" if msg.topic.endswith("store/messages/count") else "retained"
            self.counts[key] = int(msg.payload)

        c.on_message = on_message
        c.connect("127.0.0.1", self.port)
        c.subscribe([("$SYS/broker/store/messages/count", 0),
                     ("$SYS/broker/retained messages/count", 0)])
        c.loop_start()
        self._watch = c

    def wait_drained(self, timeout: float = 120.0) -> None:
        """Until nothing is queued, read twice one ``$SYS`` period apart."""
        deadline = time.monotonic() + timeout
        zeros = 0
        while zeros < 2:
            assert time.monotonic() < deadline, f"the broker still holds {self.queued} messages"
            zeros = zeros + 1 if self.queued == 0 and min(self.counts.values()) >= 0 else 0
            time.sleep(1.0)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.disconnect()
            self._watch.loop_stop()
        super().close()


def make_session(port: int, client_id: str, topic: str = "fleet/#") -> None:
    """Create the persistent MQTT session (and subscription) ``serve`` will resume, so
    that nothing published before ``serve`` subscribes is lost (no log line needed)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    c.subscribe(topic, qos=1)
    assert done.wait(10)
    c.disconnect()
    c.loop_stop()


class Serve:
    """``python -m tsfleet serve`` as a child process; stderr kept line by line."""

    def __init__(self, db: str, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tsfleet", "serve", "--db", db, *args],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL, text=True, errors="backslashreplace")
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self, n: int = 30) -> str:
        return "".join(self.lines[-n:])

    def stop(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


class FastPublisher:
    """QoS 1 without waiting message by message; :meth:`drain` waits for every PUBACK."""

    def __init__(self, port: int, client_id: str = "t-fast-pub"):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.n_sent = self.n_acked = 0
        self.client.on_publish = self._acked
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _acked(self, *args) -> None:
        self.n_acked += 1

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)
        self.n_sent += 1

    def drain(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.n_acked < self.n_sent:
            assert time.monotonic() < deadline, f"{self.n_acked} of {self.n_sent} acknowledged"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def coap_post(ctx: aiocoap.Context, port: int, path: str, payload: bytes,
                    cf: int | None, timeout: float = 60.0, non: bool = False
                    ) -> aiocoap.Message:
    """One POST; ``non``: a NON request, which aiocoap does not hold back behind the one
    confirmable exchange it allows per server (NSTART 1), so many can be in flight."""
    tuning = {"transport_tuning": aiocoap.Unreliable} if non else {}
    msg = aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{port}{path}",
                          payload=payload, **tuning)
    if cf is not None:
        msg.opt.content_format = cf
    return await asyncio.wait_for(ctx.request(msg).response, timeout)


async def coap_until_answered(ctx: aiocoap.Context, port: int, path: str, payload: bytes,
                              cf: int | None, timeout: float = 60.0, non: bool = False
                              ) -> aiocoap.Message:
    """POST until an answer other than 5.03 (busy) comes back (a NON request lost is sent
    again: the store absorbs a duplicate); also waits for the bind."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = await coap_post(ctx, port, path, payload, cf, timeout=5, non=non)
            if str(resp.code).split()[0] != "5.03":
                return resp
        except (aiocoap.error.NetworkError, TimeoutError):
            pass
        assert time.monotonic() < deadline, f"no answer from CoAP 127.0.0.1:{port}{path}"
        await asyncio.sleep(0.2)
