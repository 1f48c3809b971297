"""The MQTT receive path alone: CPU per message of tsfleet's client vs plain paho.

    PYTHONPATH=. python bench/mqtt_receive.py                      # 30,000 messages, 3 rounds
    PYTHONPATH=. python bench/mqtt_receive.py --messages 500000 --size 200

A real mosquitto on 127.0.0.1. For each client kind, a persistent session is created
and closed, ``--messages`` QoS 1 messages of ``--size`` bytes are published while it is
away (the broker queues them), then the subscriber reconnects and drains the backlog
with acknowledgements sent from another thread, as ``serve``'s writer sends them
after a commit (in batches of ``--ack-batch``). Printed: the subscriber's process CPU
per message (thread CPU of the client's loop plus the acknowledging thread; less
sensitive to the machine's load than wall time), the drain rate, and the ratio of
:class:`tsfleet.live.mqtt.BulkClient` to paho's own ``Client`` from the same run,
rounds interleaved. The handler does nothing but queue the acknowledgement: this is
the transport's cost, not decoding. paho acknowledges with ``ack(mid, 1)`` per message;
the BulkClient with one ``send_acks(mids)`` per batch, as ``serve``'s writer does.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tsfleet.live.broker import LocalBroker
from tsfleet.live.mqtt import BulkClient


def publish(port: int, n: int, size: int) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-rx-pub",
                    protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(5000)
    c.max_queued_messages_set(0)
    acked = [0]
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    body = os.urandom(size)
    for i in range(n):
        c.publish(f"bench/rx/{i % 1000}", body, qos=1)
    deadline = time.time() + 300
    while acked[0] < n and time.time() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    if acked[0] < n:
        raise SystemExit(f"the broker acknowledged {acked[0]} of {n}")


def drain(kind: str, port: int, n: int, ack_batch: int, *, subscribe_only: bool = False) -> dict:
    cls = BulkClient if kind == "tsfleet" else mqtt.Client
    c = cls(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-rx-{kind}",
            protocol=mqtt.MQTTv5, manual_ack=True)
    got = [0]
    done = threading.Event()
    subscribed = threading.Event()
    acks: queue.SimpleQueue = queue.SimpleQueue()
    cpu = {}

    def on_message(client, userdata, msg):
        if "loop" not in cpu:
            cpu["loop"], cpu["t0"] = time.thread_time(), time.perf_counter()
        got[0] += 1
        acks.put(msg.mid)
        if got[0] >= n:
            cpu["loop"] = time.thread_time() - cpu["loop"]
            cpu["wall"] = time.perf_counter() - cpu["t0"]
            done.set()

    def acker():
        t0 = time.thread_time()
        k = 0
        while k < n:
            mids = [acks.get()]
            while len(mids) < ack_batch:
                try:
                    mids.append(acks.get_nowait())
                except queue.Empty:
                    break
            if kind == "tsfleet":  # as serve's writer: one write of PUBACKs per batch
                c.send_acks(mids)
            else:
                for mid in mids:
                    c.ack(mid, 1)
            k += len(mids)
        cpu["ack"] = time.thread_time() - t0

    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_connect = lambda client, *a: client.subscribe("bench/rx/#", qos=1)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    if not subscribed.wait(30):
        raise SystemExit("no SUBACK")
    if subscribe_only:
        c.disconnect()
        c.loop_stop()
        return {}
    t = threading.Thread(target=acker, daemon=True)
    t.start()
    if not done.wait(600):
        raise SystemExit(f"{kind}: received {got[0]} of {n}")
    t.join(60)
    time.sleep(0.5)  # the last acknowledgements leave
    c.disconnect()
    c.loop_stop()
    return {"cpu_us": (cpu["loop"] + cpu["ack"]) / n * 1e6, "rate": n / cpu["wall"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--size", type=int, default=120, help="payload bytes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ack-batch", type=int, default=2000)
    a = ap.parse_args(argv)
    res: dict[str, list[dict]] = {"paho": [], "tsfleet": []}
    load0 = os.getloadavg()[0]
    with LocalBroker(persistence=False) as broker:
        for _ in range(a.rounds):
            for kind in ("paho", "tsfleet"):
                drain(kind, broker.port, a.messages, a.ack_batch, subscribe_only=True)
                publish(broker.port, a.messages, a.size)
                res[kind].append(drain(kind, broker.port, a.messages, a.ack_batch))
    load = (load0 + os.getloadavg()[0]) / 2
    print(f"MQTT receive path: {a.messages:,} QoS 1 messages of {a.size} B drained from a "
          f"backlog, {a.rounds} rounds (median), acks in batches of {a.ack_batch}:")
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("cpu_us", "rate")}
           for k, v in res.items()}
    for k, label in (("paho", "paho Client (baseline)"), ("tsfleet", "tsfleet BulkClient")):
        print(f"  {label:<24} {med[k]['cpu_us']:6.1f} us CPU per message, "
              f"{med[k]['rate']:9,.0f} messages/s")
    cpu_ratio = med["tsfleet"]["cpu_us"] / med["paho"]["cpu_us"]
    print(f"ratio BulkClient / paho: CPU per message {cpu_ratio:.2f}x, "
          f"rate {med['tsfleet']['rate'] / med['paho']['rate']:.2f}x; load average {load:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
