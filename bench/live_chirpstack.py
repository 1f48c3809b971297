"""ChirpStack live ingest benchmark: uplink events -> DuckDB, uplinks/s and latency.

    PYTHONPATH=. python bench/live.py --source chirpstack            # 20,000 uplinks/s, 20 s
    PYTHONPATH=. python bench/live.py --source chirpstack --rate 30000 --gateways 3

A real mosquitto on 127.0.0.1; ``tsfleet serve``'s Server in this process reading
it as a ChirpStack broker (``chirpstack_mqtt``); a publisher in a child process
sending ChirpStack v4 ``up`` events in the JSON mapping (ChirpStack's default
marshaling), each with ``--gateways`` rxInfo entries and a decoded ``object`` of two
readings, at ``--rate`` uplinks/s with QoS 1. Each event's ``time`` is its publish
time; latency is commit time minus that. Every uplink becomes 2 readings,
``--gateways`` heard connections and a ``lorawan_uplinks`` row. The baseline is the
same fleet's readings sent as SenML JSON (one pack of the two readings per message,
no gateways), the plain MQTT path, at the same rate in the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _common import RawPublisher, drive_server, paced

from tsfleet.live.broker import LocalBroker
from tsfleet.live.server import ServeConfig

APP = "5c8f1d2e-0000-4000-8000-000000000001"


def template(n_gateways: int) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """A ChirpStack up event in the JSON mapping, cut where device, time and counter go."""
    msg = {"deduplicationId": "00000000-0000-4000-8000-000000000000", "time": "@T@",
           "deviceInfo": {"tenantId": "t", "tenantName": "plant", "applicationId": APP,
                          "applicationName": "sensors", "deviceProfileId": "p",
                          "deviceProfileName": "th-generic", "deviceName": "@D@",
                          "devEui": "@D@", "tags": {"site": "north"}},
           "devAddr": "01020304", "adr": True, "dr": 5, "fCnt": 987654321, "fPort": 2,
           "data": "AQI=", "object": {"temperature_c": 21.5, "humidity_pct": 40.0},
           "rxInfo": [{"gatewayId": f"aa555a00000000{j:02x}", "uplinkId": 1234,
                       "rssi": -80 - 7 * j, "snr": 9.5 - 3 * j, "channel": 2,
                       "location": {}, "context": "AAAA", "crcStatus": "CRC_OK"}
                      for j in range(n_gateways)],
           "txInfo": {"frequency": 868100000, "modulation": {"lora": {
               "bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}}}
    text = json.dumps(msg, separators=(",", ":"))
    a, rest = text.split("@T@", 1)
    b, rest = rest.split("@D@", 1)
    c, rest = rest.split("@D@", 1)
    d, e = rest.split("987654321", 1)
    return tuple(s.encode() for s in (a, b, c, d, e))


def publisher(port: int, rate: float, seconds: float, devices: int, n_gateways: int,
              source: str, cpu_used=None, k: int = 0, acked=None) -> None:
    """Publish for ``seconds`` through a :class:`RawPublisher` (QoS 1, what the broker
    acknowledged is counted), as a network server writes its events: the publishers
    share the 2 cores with the server, and paho's ``publish`` cost them about 85 us of
    CPU per event (more than the server's own work per uplink)."""
    from tsfleet.live.senml import encode_json

    c = RawPublisher(port, f"bench-cs-pub-{source}-{k}")
    a, b, cc, d, e = template(n_gateways)
    cpu0 = time.process_time()
    for i, now in paced(rate, seconds, c.idle):
        dev = f"70b3d57ed{k:01x}{i % devices:06x}"
        if source == "chirpstack":
            ts = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            body = a + ts + b + dev.encode() + cc + dev.encode() + d + \
                str(i // devices).encode() + e
            c.publish(f"application/{APP}/device/{dev}/event/up", body)
        else:
            body = encode_json([{"bn": f"{dev}/", "bt": now, "n": "temperature_c", "v": 21.5},
                                {"n": "humidity_pct", "v": 40.0}])
            c.publish(f"fleet/{dev}/senml", body)
    c.close()  # every message handed to the broker (PUBACKs counted) before leaving
    if cpu_used is not None:
        cpu_used.value = time.process_time() - cpu0
    if acked is not None:  # what the broker holds for the server: the drain waits for it
        acked.value = c.acked


def run(port: int, db: str, rate: float, seconds: float, devices: int, n_gateways: int,
        source: str, publishers: int = 1) -> dict:
    lat: list[float] = []
    commits: list[tuple[float, int]] = []
    lock = threading.Lock()

    def on_commit(batch, committed_at):
        with lock:
            n = 0
            for env in batch:
                if env.decoded and env.decoded.observed_at:
                    lat.append(committed_at - env.decoded.observed_at[0])
                    n += 1
            commits.append((committed_at, n))

    cfg = ServeConfig(db=db, receive_maximum=65535, client_id=f"bench-cs-{source}",
                      **({"chirpstack_mqtt": f"127.0.0.1:{port}"} if source == "chirpstack"
                         else {"mqtt": f"127.0.0.1:{port}"}))
    ctx = mp.get_context("spawn")
    cpus = [ctx.Value("d", 0.0) for _ in range(publishers)]
    acks = [ctx.Value("q", 0) for _ in range(publishers)]
    out = drive_server(cfg, on_commit, commits, lock, publisher,
                       [(port, rate / publishers, seconds, devices, n_gateways, source, cpus[k],
                         k, acks[k]) for k in range(publishers)],
                       expected=lambda: sum(a.value for a in acks))
    with lock:
        total = sum(n for _, n in commits)
        arr = np.array(lat) if lat else np.array([np.nan])
    return {"uplinks": total, "published": out["expected"], "sustained": out["sustained"],
            "p50_s": float(np.percentile(arr, 50)), "p99_s": float(np.percentile(arr, 99)),
            "max_s": float(np.max(arr)), "cpu_us": out["cpu_s"] / max(total, 1) * 1e6,
            "pub_cpu_us": sum(c.value for c in cpus) / max(total, 1) * 1e6,
            "load": out["load"], "batches": out["server"].writer.stats.n_batches}


def pipeline_only(n: int, devices: int, n_gateways: int, rounds: int = 3) -> tuple[float, float]:
    """CPU us per uplink of decoding and of storing (batches of 2,500 uplinks, as the
    writer commits them), without MQTT: the server's own share; best of ``rounds``."""
    from tsfleet import Fleet
    from tsfleet.live.chirpstack import ChirpStack
    from tsfleet.live.server import known_metrics
    from tsfleet.live.writer import Envelope, Writer, readings_table

    fleet = Fleet(memory=True)
    cs = ChirpStack(known_metrics(fleet))
    a, b, c, d, e = template(n_gateways)
    readings_table([])  # the one-off pandas import, as Writer.start does
    writer = Writer(fleet)
    now = time.time()
    best = (float("inf"), float("inf"))
    for r in range(rounds):
        envs = []
        for i in range(n):
            dev = f"70b3d57ed0{i % devices:06x}".encode()
            ts = datetime.fromtimestamp(now + r * n + i / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ").encode()
            envs.append(Envelope("mqtt", f"application/{APP}/device/{dev.decode()}/event/up",
                                 a + ts + b + dev + c + dev + d + str(r * n + i).encode() + e,
                                 now))
        t0 = time.process_time()
        for env in envs:
            cs.decode_into(env)
        t1 = time.process_time()
        for lo in range(0, n, 2500):
            writer._flush(envs[lo:lo + 2500])
        t2 = time.process_time()
        best = min(best, ((t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6), key=sum)
    fleet.close()
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="chirpstack")
    ap.add_argument("--rate", type=float, default=20_000, help="uplinks/s offered")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--gateways", type=int, default=3, help="receiving gateways per uplink")
    ap.add_argument("--baseline-seconds", type=float, default=10)
    ap.add_argument("--publishers", type=int, default=1,
                    help="publisher processes sharing the offered rate")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(persistence=False) as broker:
        res = run(broker.port, str(Path(tmp) / "cs.duckdb"), args.rate, args.seconds,
                  args.devices, args.gateways, "chirpstack", args.publishers)
        base = run(broker.port, str(Path(tmp) / "base.duckdb"), args.rate,
                   args.baseline_seconds, args.devices, args.gateways, "senml", args.publishers)
    print(f"ChirpStack up events (JSON, {args.gateways} gateways, 2 readings each), offered "
          f"{args.rate:,.0f} uplinks/s for {args.seconds:.0f} s, {args.devices:,} devices:")
    print(f"  stored {res['uplinks']:,} uplinks in {res['batches']} commits, of "
          f"{res['published']:,} the broker acknowledged to the publishers")
    print(f"  throughput  {res['sustained']:,.0f} uplinks/s sustained (target >= 20,000)")
    print(f"  latency     p50 {res['p50_s']:.2f} s, p99 {res['p99_s']:.2f} s, max "
          f"{res['max_s']:.2f} s  (target p99 <= 2 s)")
    print(f"  server CPU  {res['cpu_us']:.1f} us per uplink = {res['cpu_us'] / 100:.2f} CPU-s per "
          f"10k uplinks (load-independent), publishers {res['pub_cpu_us']:.1f} us")
    print(f"  load average during the run: {res['load']:.1f} on {os.cpu_count()} cores")
    dec, store = pipeline_only(20_000, args.devices, args.gateways)
    print(f"  pipeline only (no MQTT, best of 3 x 20,000 uplinks): decode {dec:.1f} + store "
          f"{store:.1f} us CPU per uplink = {(dec + store) / 100:.2f} CPU-s per 10k uplinks = "
          f"{1e6 / (dec + store):,.0f} uplinks per CPU-second")
    print(f"baseline: the same readings as SenML JSON packs of 2 (no gateways), same offer, "
          f"{args.baseline_seconds:.0f} s:")
    print(f"  stored {base['uplinks']:,} of {base['published']:,} published")
    print(f"  throughput  {base['sustained']:,.0f} messages/s, p99 {base['p99_s']:.2f} s, "
          f"server CPU {base['cpu_us']:.1f} us per message, load {base['load']:.1f}")
    print(f"ratio ChirpStack / SenML messages per second: "
          f"{res['sustained'] / base['sustained']:.2f}x; server CPU per message "
          f"{res['cpu_us'] / base['cpu_us']:.1f}x")


if __name__ == "__main__":
    main()
