"""OPC UA benchmark: N monitored items at 1 s sampling, held, with 0 values lost.

    PYTHONPATH=. python bench/opcua.py                            # 200 items for 60 s
    PYTHONPATH=. python bench/opcua.py --items 2000 --seconds 600 # the issue's target

A child process runs an asyncua server with ``--items`` Double variables in the folder
``Bench`` (``ns=2;s=item-K``) and writes every one of them once a second, each value
with that second as its source timestamp. ``tsfleet serve --opcua`` (in this process,
the real :class:`tsfleet.live.server.Server`) subscribes to them by browsing the folder
(sampling 1 s, queue 10) into a fresh store. The figure: values written by the server
against readings stored (lost = written - stored; the target is 0), and the delay from
the last write to the last value stored.

Baseline, in the same run: a second client that reads all the variables once a second
(one Read request of every node, the simplest polling integration) and counts the
distinct values it saw; between two reads a value that changed twice is missed, and a
read that takes longer than the period skips one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


# -- the child: the OPC UA server that writes every item every second ---------------------
async def child(port: int, items: int, seconds: float) -> None:
    from asyncua import Server, ua

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    idx = await server.register_namespace("urn:tsfleet:bench")
    folder = await server.nodes.objects.add_folder(ua.NodeId("Bench", idx), "Bench")
    nodes = [await folder.add_variable(ua.NodeId(f"item-{k}", idx), f"item-{k}", -1.0)
             for k in range(items)]
    ids = [n.nodeid for n in nodes]
    await server.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    assert (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "go"
    written = late = 0
    t0 = float(int(time.time()) + 1)
    tick = 0
    while tick < seconds:
        at = t0 + tick
        await asyncio.sleep(max(0.0, at - time.time()))
        if time.time() - at > 1.0:
            late += 1
        ts = datetime.fromtimestamp(at, UTC)
        for k, nid in enumerate(ids):
            # a plausible temperature (the pipeline quarantines 250 degC as out of range)
            value = 20.0 + tick % 10 + k / 100_000
            dv = ua.DataValue(ua.Variant(value, ua.VariantType.Double),
                              SourceTimestamp=ts, ServerTimestamp=ts)
            await server.write_attribute_value(nid, dv)
            written += 1
            if k % 200 == 199:
                await asyncio.sleep(0)  # let the publishing run between slices
        tick += 1
    print(json.dumps({"written": written, "first_at": t0, "last_at": t0 + tick - 1,
                      "late_ticks": late, "done_at": time.time()}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # until the parent is done
    await server.stop()


# -- the baseline: one Read of every node per second ---------------------------------------
class Poller(threading.Thread):
    def __init__(self, url: str, items: int):
        super().__init__(daemon=True)
        self.url, self.items = url, items
        self.seen: set[tuple[int, float]] = set()
        self.n_reads = self.n_slow = 0
        self.cpu_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        t = time.thread_time()
        self.n_reconnects = 0
        while not self.stop.is_set():
            try:
                asyncio.run(self._run())
            except Exception as exc:  # noqa: BLE001 - a busy server: poll on, count it
                self.n_reconnects += 1
                print(f"baseline: {exc!r}; reconnecting", file=sys.stderr, flush=True)
        self.cpu_s = time.thread_time() - t

    async def _run(self) -> None:
        from asyncua import Client, ua

        async with Client(self.url, timeout=30, watchdog_intervall=5.0) as client:
            params = ua.ReadParameters()
            for k in range(self.items):
                rv = ua.ReadValueId()
                rv.NodeId, rv.AttributeId = ua.NodeId(f"item-{k}", 2), ua.AttributeIds.Value
                params.NodesToRead.append(rv)
            nxt = time.time()
            while not self.stop.is_set():
                values = await client.uaclient.read(params)
                self.n_reads += 1
                for k, dv in enumerate(values):
                    if dv.SourceTimestamp is not None and dv.Value.Value != -1.0:
                        self.seen.add((k, dv.SourceTimestamp.timestamp()))
                nxt += 1.0
                if time.time() > nxt:
                    self.n_slow += 1
                    nxt = time.time()
                await asyncio.sleep(max(0.0, nxt - time.time()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200, help="monitored items (default 200)")
    ap.add_argument("--seconds", type=float, default=60, help="seconds held (default 60)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the polling baseline")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        asyncio.run(child(args.child, args.items, args.seconds))
        return

    from tsfleet.live.server import ServeConfig, Server

    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/bench/"
    folder = Path(tempfile.mkdtemp(prefix="tsfleet-opcua-bench-"))
    (folder / "map.json").write_text(json.dumps({"sampling_ms": 1000, "queue_size": 10, "items": [
        {"browse": "ns=2;s=Bench", "name": "item-*", "device": "ua-{name}",
         "metric": "temperature_c"}]}))
    print(f"load before: {load()}", flush=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(port), "--items",
                             str(args.items), "--seconds", str(args.seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", "the OPC UA server did not start"
    server = Server(ServeConfig(db=str(folder / "bench.duckdb"), opcua=url,
                                opcua_map=str(folder / "map.json")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(120)
    deadline = time.monotonic() + 120
    while server.opcua is None or not server.opcua.connected.is_set():
        assert time.monotonic() < deadline, "tsfleet did not connect"
        time.sleep(0.1)
    poller = None
    if not args.no_baseline:
        poller = Poller(url, args.items)
        poller.start()
    cpu0 = os.times()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    loads, done, started = [], threading.Event(), time.monotonic()

    def sample() -> None:
        while not done.wait(0 if not loads else 60):
            loads.append(load())
            st = server.opcua.stats
            print(f"  {time.monotonic() - started:4.0f} s: {st.n_values:,} values received, "
                  f"{st.n_readings:,} handed to the writer, {st.n_connects} connection(s), "
                  f"load {loads[-1]}", flush=True)

    threading.Thread(target=sample, daemon=True).start()
    report = json.loads(proc.stdout.readline())
    done.set()
    if poller:
        time.sleep(1.5)
        poller.stop.set()
        poller.join(30)
    first = datetime.fromtimestamp(report["first_at"], UTC).replace(tzinfo=None)
    stored, last_stored_at = 0, None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.writer.sync(60)
        stored = server.fleet.query("select count(*) as n from readings where observed_at >= ?",
                                    [first])[0]["n"]
        if stored >= report["written"]:
            break
        time.sleep(0.5)
    last_stored_at = time.time()
    cpu = os.times()
    n_dup = server.writer.stats.n_duplicates
    n_quarantined = server.writer.stats.n_quarantined
    stats = server.opcua.stats
    server.stop()
    thread.join(60)
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(30)
    written = report["written"]
    print(f"OPC UA: {args.items} items x {args.seconds:g} s at 1 s sampling "
          f"({report['late_ticks']} server ticks more than 1 s late)")
    print(f"  tsfleet serve --opcua: written {written:,}, stored {stored:,}, lost "
          f"{written - stored:,} ({100 * (written - stored) / written:.3f}%), "
          f"{n_dup:,} duplicates absorbed, {n_quarantined:,} quarantined, "
          f"{stats.n_connects} connection(s), "
          f"{stats.n_dropped} dropped; last value stored "
          f"{last_stored_at - report['done_at']:.1f} s after the last write")
    total = cpu.user + cpu.system - cpu0.user - cpu0.system
    base_cpu = poller.cpu_s if poller else 0.0
    print(f"  serve CPU: {total - base_cpu:.1f} s over {args.seconds:g} s "
          f"({1e6 * (total - base_cpu) / written:.0f} us per value; the process's CPU less "
          f"the baseline client's thread)")
    if poller:
        got = len(poller.seen)
        print(f"  baseline, one Read of all nodes per second: {got:,} values seen of "
              f"{written:,} ({100 * got / written:.1f}%), {poller.n_reads} reads, "
              f"{poller.n_slow} late, {poller.n_reconnects} reconnects, its client "
              f"{poller.cpu_s:.1f} s CPU")
        print(f"  ratio stored / baseline: {stored / max(got, 1):.3f}")
    print(f"load during the run (each minute): {' | '.join(loads)}; after: {load()}")


if __name__ == "__main__":
    main()
