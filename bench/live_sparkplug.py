"""Sparkplug B live ingest benchmark: DDATA metrics -> DuckDB, metrics/s and latency.

    PYTHONPATH=. python bench/live.py --source sparkplug             # 20,000 metrics/s, 20 s
    PYTHONPATH=. python bench/live.py --source sparkplug --samples 5 # 5 values per metric

A real mosquitto on 127.0.0.1; ``tsfleet serve``'s Server in this process with
``--sparkplug`` (``sparkplug=True``) and a map file; publishers in child processes, each
an edge node (``spBv1.0/bench/.../node-K``) that publishes its NBIRTH, one DBIRTH per
device (four metrics with aliases: temperature, humidity, vibration, battery), then
DDATA messages by alias with ``seq`` counting on, at ``--rate`` metrics/s with QoS 1.
A DDATA carries the device's four metrics, ``--samples`` values of each with their own
timestamps (an edge node that samples faster than it publishes; 1 = one value each).
Each metric's timestamp is its publish time; latency is commit time minus that. The
baseline is the same readings sent as SenML JSON packs (one pack per DDATA's values),
the plain MQTT path, at the same offer in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import RawPublisher, drive_server, paced

from tsfleet.live.broker import LocalBroker
from tsfleet.live.server import ServeConfig

GROUP = "bench"
#: (Sparkplug metric name, tsfleet metric, value) of every bench device
METRICS = (("Zone/Temperature", "temperature_c", 21.5), ("Zone/Humidity", "humidity_pct", 40.0),
           ("Zone/Vibration", "vibration_g", 0.3), ("Power/Battery", "battery_pct", 87.0))
MAP = "".join(f'[[metric]]\nname = "{name}"\nmetric = "{metric}"\n\n'
              for name, metric, _ in METRICS)


def publisher(port: int, rate: float, seconds: float, devices: int, samples: int,
              source: str, cpu_used=None, k: int = 0, sent=None) -> None:
    """Edge node ``node-k``: births, then DDATA (or the SenML baseline) for ``seconds``,
    through a :class:`RawPublisher` (QoS 1; what the broker acknowledged is counted)."""
    from tsfleet.live.senml import encode_json
    from tsfleet.live.sparkplug_pb import DataType, Payload

    node = f"node-{k}"
    c = RawPublisher(port, f"bench-spb-{source}-{k}")
    seq = 0
    n_births = 1 + devices if source == "sparkplug" else 0
    if source == "sparkplug":
        birth = Payload(timestamp=int(time.time() * 1000), seq=seq)
        birth.metrics.add(name="bdSeq", datatype=DataType.Int64, long_value=0)
        c.publish(f"spBv1.0/{GROUP}/NBIRTH/{node}", birth.SerializeToString())
        for d in range(devices):
            seq = (seq + 1) % 256
            p = Payload(timestamp=int(time.time() * 1000), seq=seq)
            for a, (name, _, v) in enumerate(METRICS, start=1):
                p.metrics.add(name=name, alias=a, datatype=DataType.Double, double_value=v)
            c.publish(f"spBv1.0/{GROUP}/DBIRTH/{node}/d{k}-{d:05d}", p.SerializeToString())
        c.flush()
        time.sleep(1.0)  # the births are stored before the data is timed
    per_msg = len(METRICS) * samples
    msgs_per_s = rate / per_msg
    cpu0 = time.process_time()
    for i, now in paced(msgs_per_s, seconds, c.idle):
        dev = f"d{k}-{i % devices:05d}"
        if source == "sparkplug":
            seq = (seq + 1) % 256
            now_ms = int(now * 1000)
            p = Payload(timestamp=now_ms, seq=seq)
            for s in range(samples):
                ts = now_ms - (samples - 1 - s)  # one millisecond apart
                for a, (_, _, v) in enumerate(METRICS, start=1):
                    p.metrics.add(alias=a, datatype=DataType.Double, double_value=v + s,
                                  timestamp=ts)
            c.publish(f"spBv1.0/{GROUP}/DDATA/{node}/{dev}", p.SerializeToString())
        else:
            recs = [{"bn": f"{dev}/", "bt": now, "n": METRICS[0][1], "v": METRICS[0][2],
                     "t": -(samples - 1) * 1e-3}]
            recs += [{"n": m, "v": v + s, "t": -(samples - 1 - s) * 1e-3}
                     for s in range(samples) for j, (_, m, v) in enumerate(METRICS)
                     if (s, j) != (0, 0)]
            c.publish(f"fleet/{dev}/senml", encode_json(recs))
    c.close()  # every message handed to the broker before leaving
    if cpu_used is not None:
        cpu_used.value = time.process_time() - cpu0
    if sent is not None:  # values the broker acknowledged (the births' excluded)
        sent.value = max(c.acked - n_births, 0) * per_msg


def run(port: int, tmp: Path, rate: float, seconds: float, devices: int, samples: int,
        source: str, publishers: int) -> dict:
    lat: list[float] = []
    commits: list[tuple[float, int]] = []
    first = [float("inf")]  # the first DDATA value's publish time
    lock = threading.Lock()

    def on_commit(batch, committed_at):
        with lock:
            n = 0
            for env in batch:
                d = env.decoded
                if d and d.observed_at and not d.fmt.endswith("BIRTH"):
                    lat.append(committed_at - max(d.observed_at))
                    first[0] = min(first[0], min(d.observed_at))
                    n += len(d.observed_at)
            if n:  # the births' commit opens no window: the data starts a second later
                commits.append((committed_at, n))

    mapping = tmp / f"{source}.toml"
    mapping.write_text(MAP)
    extra = {"sparkplug": True, "sparkplug_map": str(mapping)} if source == "sparkplug" else {}
    cfg = ServeConfig(db=str(tmp / f"{source}.duckdb"), mqtt=f"127.0.0.1:{port}",
                      receive_maximum=65535, client_id=f"bench-spb-{source}", **extra)
    ctx = mp.get_context("spawn")
    cpus = [ctx.Value("d", 0.0) for _ in range(publishers)]
    sent = [ctx.Value("q", 0) for _ in range(publishers)]
    out = drive_server(cfg, on_commit, commits, lock, publisher,
                       [(port, rate / publishers, seconds, devices // publishers, samples,
                         source, cpus[k], k, sent[k]) for k in range(publishers)])
    with lock:
        total = sum(n for _, n in commits)
        arr = np.array(lat) if lat else np.array([np.nan])
    # DDATA values in the store: its readings less the births' values (each DBIRTH's four)
    births = len(METRICS) * (devices // publishers) * publishers if source == "sparkplug" else 0
    return {"sent": sum(v.value for v in sent), "received": out["received"], "metrics": total,
            "stored_values": out["stored"] - births, "births": births,
            "end_to_end": total / max(max(t for t, _ in commits) - first[0], 1e-9)
            if commits else float("nan"),
            "stored": out["stored"], "reasons": out["reasons"],
            "quarantined": sum(r["n"] for r in out["reasons"]), "sustained": out["sustained"],
            "p50_s": float(np.percentile(arr, 50)), "p99_s": float(np.percentile(arr, 99)),
            "max_s": float(np.max(arr)), "cpu_us": out["cpu_s"] / max(total, 1) * 1e6,
            "pub_cpu_us": sum(c.value for c in cpus) / max(total, 1) * 1e6,
            "load": out["load"], "batches": out["server"].writer.stats.n_batches,
            "messages": out["server"].writer.stats.n_messages}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="sparkplug")
    ap.add_argument("--rate", type=float, default=20_000, help="metric values/s offered")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=1,
                    help="values of each of a device's 4 metrics per DDATA (default 1)")
    ap.add_argument("--baseline-seconds", type=float, default=10)
    ap.add_argument("--publishers", type=int, default=2,
                    help="edge nodes (publisher processes) sharing the offered rate")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(persistence=False) as broker:
        res = run(broker.port, Path(tmp), args.rate, args.seconds, args.devices, args.samples,
                  "sparkplug", args.publishers)
        base = run(broker.port, Path(tmp), args.rate, args.baseline_seconds, args.devices,
                   args.samples, "senml", args.publishers)
    per_msg = len(METRICS) * args.samples
    print(f"Sparkplug B DDATA ({per_msg} metric values per message: 4 metrics x "
          f"{args.samples}), offered {args.rate:,.0f} values/s for {args.seconds:.0f} s, "
          f"{args.devices:,} devices on {args.publishers} edge nodes:")
    print(f"  published {res['sent']:,} values (acknowledged by the broker), in the store "
          f"{res['stored_values']:,} (its {res['stored']:,} readings less the births' "
          f"{res['births']:,}): {res['sent'] - res['stored_values']:,} lost; quarantined "
          f"{res['quarantined']:,}; {res['batches']} commits")
    print(f"  messages received by the server {res['received']:,}, stored "
          f"{res['messages']:,}")
    for r in res["reasons"]:
        print(f"    quarantined {r['n']:,} x {r['reason']}: {str(r['detail'])[:80]}")
    print(f"  throughput  {res['sustained']:,.0f} metric values/s sustained = "
          f"{res['sustained'] / per_msg:,.0f} messages/s (target >= 20,000 values/s): the "
          f"commit rate from the first to the last but one commit of DDATA values")
    print(f"              {res['end_to_end']:,.0f} values/s end to end (first DDATA publish to "
          f"last commit: the offer at best, less one batching delay)")
    print(f"  latency     p50 {res['p50_s']:.2f} s, p99 {res['p99_s']:.2f} s, max "
          f"{res['max_s']:.2f} s  (target p99 <= 2 s)")
    print(f"  server CPU  {res['cpu_us']:.1f} us per value (load-independent), publishers "
          f"{res['pub_cpu_us']:.1f} us")
    print(f"  load average during the run: {res['load']:.1f} on {os.cpu_count()} cores")
    print(f"baseline: the same values as SenML JSON packs of {per_msg}, same offer, "
          f"{args.baseline_seconds:.0f} s:")
    print(f"  published {base['sent']:,} values, in the store {base['stored_values']:,}: "
          f"{base['sent'] - base['stored_values']:,} lost")
    print(f"  throughput  {base['sustained']:,.0f} values/s, p99 {base['p99_s']:.2f} s, "
          f"server CPU {base['cpu_us']:.1f} us per value, load {base['load']:.1f}")
    print(f"ratio Sparkplug / SenML values per second: {res['sustained'] / base['sustained']:.2f}x;"
          f" server CPU per value {res['cpu_us'] / base['cpu_us']:.2f}x")


if __name__ == "__main__":
    main()
