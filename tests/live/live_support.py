"""Helpers of the live-ingest tests: stores, a publisher, SenML packs from the simulator."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

import paho.mqtt.client as mqtt

from tsfleet import Fleet
from tsfleet.live.decode import Decoder
from tsfleet.live.senml import encode_cbor, encode_json
from tsfleet.live.server import ServeConfig, Server, known_metrics
from tsfleet.simulate import SimConfig, simulate

T0 = 1_780_000_000  # 2026-05-28T20:26:40Z

#: How the simulator's metrics travel as SenML: (record name, unit).
SENML_OF = {"temperature_c": ("temp", "Cel"), "humidity_pct": ("hum", "%RH"),
            "battery_pct": ("battery", "%EL"), "battery_voltage_v": ("battery_voltage", "V"),
            "rssi_dbm": ("rssi", "dBm")}


def decoder() -> Decoder:
    with Fleet(memory=True) as f:
        return Decoder(known_metrics(f))


def sim_packs(n_devices: int = 30, days: int = 3, seed: int = 5, pack_size: int = 50):
    """The simulator's delivered stream (with its duplicates, late and disordered
    readings) as SenML packs in arrival order, and the reference store that
    ingested the same stream from Arrow tables."""
    sim = simulate(SimConfig(n_devices=n_devices, days=days, seed=seed))
    ref = Fleet(memory=True)
    packs = []
    for chunk in sim.readings_chunks():
        ref.ingest("readings", chunk)
        by_dev = defaultdict(list)
        for row in chunk.to_pylist():
            by_dev[row["device_id"]].append(row)
        for dev, rows in by_dev.items():
            for lo in range(0, len(rows), pack_size):
                part = rows[lo:lo + pack_size]
                bt = part[0]["observed_at"].timestamp()
                pack = []
                for i, r in enumerate(part):
                    name, unit = SENML_OF.get(r["metric"], (r["metric"], None))
                    rec = {"n": name, "v": r["value"], "t": r["observed_at"].timestamp() - bt}
                    if unit:
                        rec["u"] = unit
                    if i == 0:
                        rec.update(bn=f"{dev}:", bt=bt)
                    pack.append(rec)
                packs.append(pack)
    return packs, ref


def stored(fleet: Fleet) -> set:
    return {tuple(r.values()) for r in fleet.query(
        "select device_id, observed_at, metric, value from readings")}


class Publisher:
    """A QoS 1 publisher that retries a message until the broker acknowledges it."""

    def __init__(self, port: int, client_id: str = "tsfleet-test-pub"):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.n_published = 0

    def publish(self, topic: str, payload: bytes, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.client.publish(topic, payload, qos=1)
                info.wait_for_publish(timeout=2)
                if info.is_published():
                    self.n_published += 1
                    return
            except (RuntimeError, ValueError):
                time.sleep(0.2)  # not connected: paho reconnects by itself
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not acknowledge {topic} in {timeout} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RunningServer:
    """``tsfleet serve`` in a thread of the test process."""

    def __init__(self, db: str, **options):
        self.server = Server(ServeConfig(db=db, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert self.server.ready.wait(30), "the server did not start"
        if self.server.subscriber:
            assert self.server.subscriber.subscribed.wait(30), "the server did not subscribe"

    def sync(self) -> None:
        assert self.server.writer.sync(60)

    def wait_received(self, n: int, timeout: float = 60.0) -> None:
        """Wait until the server has received ``n`` messages in all, then until its writer
        has stored them (:meth:`sync`)."""
        deadline = time.monotonic() + timeout
        while self.server.n_received < n:
            assert time.monotonic() < deadline, \
                f"received {self.server.n_received} of {n} messages"
            time.sleep(0.05)
        self.sync()

    def count(self, sql: str) -> int:
        """``sql``'s ``n`` from what is committed, read on a cursor of its own: the
        server's connection belongs to its writer thread, which may be mid-commit."""
        cur = self.server.fleet.con.cursor()
        try:
            return cur.execute(sql).fetchall()[0][0]
        finally:
            cur.close()

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


def serve_and_send(db: str, broker, sends: list[tuple[str, bytes]], **options) -> None:
    """Run ``tsfleet serve`` on ``db`` subscribed to ``broker`` (``options`` as
    :class:`RunningServer`'s), publish each ``(topic, payload)`` of ``sends`` at QoS 1, wait
    until serve has received and stored them all, and stop it: the store then holds what
    serve made of them."""
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", **options)
    pub = Publisher(broker.port)
    try:
        for topic, payload in sends:
            pub.publish(topic, payload)
        srv.wait_received(len(sends))
    finally:
        pub.close()
        srv.stop()


def senml_json(pack) -> bytes:
    return encode_json(pack)


def senml_cbor(pack) -> bytes:
    return encode_cbor(pack)


def vendor(obj) -> bytes:
    return json.dumps(obj).encode()
