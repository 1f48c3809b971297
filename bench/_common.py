"""Helpers shared by the benchmarks (not part of the package)."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from contextlib import contextmanager

import numpy as np
import pyarrow as pa


@contextmanager
def timer(results: dict, name: str):
    t = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t


def readings_table(n: int, n_devices: int = 10_000, start: str = "2026-01-01T00:00:00",
                   seed: int = 0) -> pa.Table:
    """n hourly battery and temperature readings over n_devices devices, in time order."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    dev = np.array([f"dev-{k:05d}" for k in range(n_devices)], dtype=object)
    metric_names = pa.array(["battery_pct", "temperature_c"])
    per_hour = n_devices * 2
    t0 = np.datetime64(start, "s")
    return pa.table({
        "device_id": pa.array(dev).take(pa.array(i % n_devices)),
        "observed_at": pa.array((t0 + (i // per_hour).astype("timedelta64[h]")
                                 + (i % n_devices % 3600).astype("timedelta64[s]")
                                 ).astype("datetime64[us]")),
        "metric": metric_names.take(pa.array((i // n_devices) % 2)),
        "value": pa.array(np.round(rng.uniform(0, 100, n), 1)),
    })


def drive_server(cfg, on_commit, commits: list, lock: threading.Lock, target,
                 publisher_args: list[tuple], expected=None) -> dict:
    """Run ``serve``'s Server on ``cfg`` in a thread, the publisher processes
    ``target(*args)`` (one per entry of ``publisher_args``), then let the backlog drain
    and stop the server. The drain lasts at most 60 s: until ``expected()`` (what the
    broker acknowledged to the publishers, counted as ``on_commit`` counts) is committed,
    or, without ``expected``, until a second passes with no new commit; with it, a
    commit that stops short for 5 s ends the drain too (the rest stay unacknowledged at
    the broker and are missing from the figures: ``expected`` is returned to show it).
    ``commits`` is the list of (committed_at, n) that ``on_commit`` appends to under
    ``lock``. Returns the server's CPU seconds over the run, the mean load average, the
    steady commit rate (first to last but one commit: the first commit's rows arrived
    before the window opened, the last is the partial batch left at the end) and the
    stopped server (its counters and closed store)."""
    from tsfleet.live.server import Server

    srv = Server(cfg, on_commit=on_commit)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    srv.ready.wait(30)
    for sub in [srv.subscriber] + srv.lora_subscribers:
        if sub is not None:
            sub.subscribed.wait(30)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for args in publisher_args]
    cpu0 = time.process_time()
    load0 = os.getloadavg()[0]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    last, deadline = -1, time.time() + 60
    want = expected() if expected is not None else None
    idle_since = time.time()
    while time.time() < deadline:
        srv.writer.sync(30)
        with lock:
            total = sum(n for _, n in commits)
        if want is not None and total >= want:
            break
        if total != last:
            last, idle_since = total, time.time()
        elif want is None or time.time() - idle_since >= 5.0:
            break
        time.sleep(1.0 if want is None else 0.1)
    cpu = time.process_time() - cpu0
    load1 = os.getloadavg()[0]
    before_stop = {"received": srv.n_received}
    if cfg.db:  # on a cursor of its own: the writer's connection may be mid-statement
        cur = srv.fleet.con.cursor()
        try:
            before_stop["stored"] = cur.execute("select count(*) from readings").fetchone()[0]
            before_stop["reasons"] = [
                {"reason": r, "detail": d, "n": n} for r, d, n in cur.execute(
                    "select reason, any_value(detail), count(*) as n from quarantine "
                    "group by reason order by n desc").fetchall()]
        finally:
            cur.close()
    srv.stop()
    th.join(60)
    with lock:
        commits.sort()
        steady = float("nan")
        if len(commits) >= 3 and commits[-2][0] > commits[0][0]:
            steady = sum(n for _, n in commits[1:-1]) / (commits[-2][0] - commits[0][0])
    return {"cpu_s": cpu, "load": (load0 + load1) / 2, "sustained": steady, "server": srv,
            "expected": want, **before_stop}


def paced(per_s: float, seconds: float, idle=None):
    """Yield (i, now) ``per_s`` times a second for ``seconds``: the publishers' clock.
    A publisher that falls behind catches up at once (its offer, not its pace, counts).
    ``idle()``, if given, is called before each wait (a publisher writes what it holds)."""
    start = time.time()
    i = 0
    while True:
        now = time.time()
        if now - start >= seconds:
            return
        due = start + i / per_s
        if due > now:
            if idle is not None:
                idle()
            time.sleep(min(due - now, 0.01))
            continue
        yield i, now
        i += 1


class RawPublisher:
    """A QoS 1 publisher of MQTT 3.1.1 packets written straight to the socket, for the
    benchmarks' simulated devices and edge nodes.

    On this 2-core machine the publishers share the CPU with the server they load: paho's
    ``publish`` (about 190 us of CPU per Sparkplug DDATA with its encoding, measured) made
    the two edge nodes cost four times the server. This one builds each PUBLISH with a few
    bytes operations and writes a few packets at a time (at most ``linger`` seconds held),
    keeps at most ``max_inflight`` messages unacknowledged and counts the broker's PUBACKs:
    ``acked`` is what the broker holds. Not for tsfleet itself: no reconnects, no retries.
    """

    def __init__(self, port: int, client_id: str, *, max_inflight: int = 2000,
                 linger: float = 0.005, host: str = "127.0.0.1"):
        import socket

        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        # CONNECT: protocol "MQTT" level 4, clean session, keepalive 0 (none)
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._recv_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"the broker refused the connection: {connack!r}")
        self.sock.setblocking(False)
        self.max_inflight, self.linger = max_inflight, linger
        self.mid = self.sent = self.acked = 0
        self._out: list[bytes] = []
        self._held_since = 0.0
        self._rbuf = b""

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 message; written within ``linger`` seconds (or by :meth:`flush`)."""
        self.mid = self.mid % 65535 + 1
        t = topic.encode()
        body = len(t).to_bytes(2, "big") + t + self.mid.to_bytes(2, "big") + payload
        if not self._out:
            self._held_since = time.monotonic()
        self._out.append(b"\x32" + _varint(len(body)) + body)
        self.sent += 1
        if len(self._out) >= 64 or time.monotonic() - self._held_since >= self.linger:
            self.flush()
        while self.sent - self.acked >= self.max_inflight:
            self.poll(0.01)

    def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self.sock.setblocking(True)
            try:
                self.sock.sendall(data)
            finally:
                self.sock.setblocking(False)
        self.poll(0)

    def poll(self, timeout: float) -> None:
        """Count the PUBACKs that arrived (waiting up to ``timeout`` seconds for some)."""
        import select

        if timeout and not select.select([self.sock], [], [], timeout)[0]:
            return
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("the broker closed the connection")
        buf = self._rbuf + data
        n = len(buf) // 4  # a PUBACK is 4 bytes: 0x40, 2, packet id
        if any(buf[k] != 0x40 for k in range(0, 4 * n, 4)):
            raise ConnectionError("unexpected packet from the broker")
        self.acked += n
        self._rbuf = buf[4 * n:]

    def close(self, timeout: float = 120.0) -> None:
        """Write what is held, wait for every PUBACK (at most ``timeout`` s), disconnect."""
        self.flush()
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            self.poll(0.05)
        self.sock.setblocking(True)
        self.sock.sendall(b"\xe0\x00")
        self.sock.close()

    def idle(self) -> None:
        """Called when the publisher waits for its next message: write what is held."""
        if self._out:
            self.flush()


def _varint(n: int) -> bytes:
    """MQTT's remaining length: 7 bits a byte, least significant first."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
