"""Live ingest benchmark: MQTT -> DuckDB throughput and publish->commit latency.

    PYTHONPATH=. python bench/live.py                      # 50,000 readings/s for 20 s
    PYTHONPATH=. python bench/live.py --rate 80000 --seconds 60

A real mosquitto on 127.0.0.1; ``tsfleet serve``'s Server in this process
(writer thread, paho network thread); a publisher in a child process sending
SenML JSON packs of ``--pack`` records at ``--rate`` readings/s with QoS 1,
each pack's base time being its publish time. Latency is commit time minus
publish time, per message. Sustained throughput is the commit rate from the
first commit to the last but one (a server slower than the offer shows its
own rate there, the backlog draining; the last commit is the partial batch
left at the end); the end-to-end figure, first publish to last commit, also
carries one batching delay. The CPU time of the server, of the
publisher (while publishing) and of mosquitto per reading give the ceiling two
idle cores would allow. The baseline is one message per reading (a SenML
pack of one record) published as fast as one publisher can. It also prints
the bytes per reading of each payload format for the same data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from tsfleet.live.broker import LocalBroker
from tsfleet.live.senml import encode_cbor, encode_json
from tsfleet.live.server import ServeConfig, Server

MQTT_OVERHEAD = 2 + 2 + 2  # fixed header (>= 2), topic length, packet id (QoS 1)


_TAILS: dict[int, bytes] = {}


def pack_payload(dev: str, now: float, pack: int) -> bytes:
    """The bench's SenML JSON pack: ``pack`` temperature records of ``dev``, the
    first carrying ``bn`` and ``bt = now``, the others small relative times.
    Byte for byte ``encode_json`` of those records; the constant records are
    encoded once, so that the publisher spends its CPU on publishing."""
    tail = _TAILS.get(pack)
    if tail is None:
        recs = [{"n": "temp", "u": "Cel", "v": 20.0 + k / 100, "t": k * 1e-3}
                for k in range(1, pack)]
        tail = _TAILS[pack] = encode_json(recs)[1:] if recs else b"]"
    head = encode_json([{"bn": f"{dev}/", "bt": now, "n": "temp", "u": "Cel", "v": 20.0}])
    return head[:-1] + (b"," + tail if pack > 1 else b"]")


def publisher(port: int, rate: float, pack: int, seconds: float, devices: int,
              cpu_used=None, tls: dict | None = None) -> None:
    """Publish for ``seconds``; ``cpu_used`` (a shared double) gets the CPU seconds
    spent publishing (the process start and imports excluded). ``tls``: the paths of
    ``ca``, ``client`` and ``client_key`` and the device's ``user``/``password``."""
    import ssl

    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{pack}")
    if tls:
        ctx = ssl.create_default_context(cafile=tls["ca"])
        ctx.load_cert_chain(tls["client"], tls["client_key"])
        c.tls_set_context(ctx)
        c.username_pw_set(tls["user"], tls["password"])
    c.max_inflight_messages_set(2000)
    c.max_queued_messages_set(0)
    acked = [0]  # PUBACKs: what the broker holds (QoS 1)

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        acked[0] += 1

    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    msgs_per_s = rate / pack
    cpu0 = time.process_time()
    start = time.time()
    i = 0
    while True:
        now = time.time()
        if now - start >= seconds:
            break
        due = start + i / msgs_per_s if rate > 0 else now
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        dev = f"b-{i % devices:05d}"
        c.publish(f"fleet/{dev}/senml", pack_payload(dev, now, pack), qos=1)
        i += 1
    deadline = time.time() + 120  # every message handed to the broker before leaving
    while acked[0] < i and time.time() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    if cpu_used is not None:
        cpu_used.value = time.process_time() - cpu0


def proc_cpu(pid: int | None) -> float:
    """CPU seconds used so far by process ``pid`` (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def run(port: int, db: str, rate: float, pack: int, seconds: float, devices: int,
        client_id: str, broker_pid: int | None = None, tls: dict | None = None) -> dict:
    lat: list[float] = []
    published: list[float] = []
    commits: list[tuple[float, int]] = []
    lock = threading.Lock()

    def on_commit(batch, committed_at):
        with lock:
            n = 0
            for env in batch:
                if env.decoded and env.decoded.observed_at:
                    published.append(env.decoded.observed_at[0])
                    lat.append(committed_at - published[-1])
                    n += env.decoded.n_readings
            commits.append((committed_at, n))

    security, url = None, f"127.0.0.1:{port}"
    if tls:
        from tsfleet.live.security import MqttSecurity
        os.environ["TSFLEET_BENCH_PW"] = tls["serve_password"]
        security = MqttSecurity(username="tsfleet", password_env="TSFLEET_BENCH_PW",
                                ca_file=tls["ca"], cert_file=tls["client"],
                                key_file=tls["client_key"])
        url = f"mqtts://127.0.0.1:{port}"
    srv = Server(ServeConfig(db=db, mqtt=url, client_id=client_id, security=security,
                             receive_maximum=65535), on_commit=on_commit)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    srv.ready.wait(30)
    srv.subscriber.subscribed.wait(30)
    ctx = mp.get_context("spawn")
    publisher_cpu = ctx.Value("d", 0.0)
    proc = ctx.Process(target=publisher, args=(port, rate, pack, seconds, devices, publisher_cpu,
                                               tls))
    t0 = time.time()
    cpu0 = time.process_time()
    broker0 = proc_cpu(broker_pid)
    proc.start()
    proc.join()
    # wait for the backlog to drain (at most 60 s)
    last = -1
    deadline = time.time() + 60
    while time.time() < deadline:
        srv.writer.sync(30)
        with lock:
            total = sum(n for _, n in commits)
        if total == last:
            break
        last = total
        time.sleep(1.0)
    cpu = time.process_time() - cpu0
    broker_cpu = proc_cpu(broker_pid) - broker0
    srv.stop()
    th.join(60)
    with lock:
        total = sum(n for _, n in commits)
        end = max(t for t, _ in commits) if commits else time.time()
        first, last = (min(published), max(published)) if published else (t0, t0)
        arr = np.array(lat) if lat else np.array([np.nan])
        # sustained: the steady commit rate, from the first commit to the last
        # but one (the first commit's readings arrived before the window opened;
        # the last commit is the partial batch left when the publisher stopped)
        commits.sort()
        steady = float("nan")
        if len(commits) >= 3 and commits[-2][0] > commits[0][0]:
            steady = sum(n for _, n in commits[1:-1]) / (commits[-2][0] - commits[0][0])
    # end to end: from the first publish (not from starting the publisher process)
    # to the last commit, so one batching delay is included; the publisher's own
    # rate shows whether it kept the offer
    return {"readings": total, "elapsed_s": end - first, "sustained": steady,
            "throughput": total / max(end - first, 1e-9),
            "published_rate": total / max(last - first, 1e-9),
            "p50_s": float(np.percentile(arr, 50)), "p99_s": float(np.percentile(arr, 99)),
            "max_s": float(np.max(arr)), "cpu_s": cpu, "publisher_cpu_s": publisher_cpu.value,
            "broker_cpu_s": broker_cpu, "batches": srv.writer.stats.n_batches,
            "messages": srv.writer.stats.n_messages}


def bytes_per_reading(n: int = 50) -> list[tuple[str, float, float]]:
    """(format, payload bytes per reading, with MQTT overhead) for the same n readings."""
    t0, topic = 1_780_000_000, "fleet/th-00017/senml"
    temps = [21.0 + (k % 7) / 10 for k in range(n)]
    senml = [{"bn": "th-00017/", "bt": t0, "n": "temp", "u": "Cel", "v": temps[0]}]
    senml += [{"n": "temp", "u": "Cel", "v": v, "t": 60 * k} for k, v in enumerate(temps) if k]
    lwm2m = [{"bn": "/3/0/", "bt": t0, "n": "9", "v": 90}]
    lwm2m += [{"n": "9", "v": 90 - k // 10, "t": 60 * k} for k in range(1, n)]
    vendor = [json.dumps({"vendor": "acme", "dev": "th-00017", "ts": t0 + 60 * k,
                          "tempF": round(v * 9 / 5 + 32, 1)}).encode()
              for k, v in enumerate(temps)]
    one = [json.dumps({"device_id": "th-00017", "observed_at": t0 + 60 * k,
                       "metric": "temperature_c", "value": v}).encode()
           for k, v in enumerate(temps)]
    sizes = {
        f"SenML JSON pack of {n}": ([encode_json(senml)], n),
        f"SenML CBOR pack of {n}": ([encode_cbor(senml)], n),
        f"LwM2M SenML JSON pack of {n} (/3/0/9)": ([encode_json(lwm2m)], n),
        f"LwM2M SenML CBOR pack of {n} (/3/0/9)": ([encode_cbor(lwm2m)], n),
        "vendor JSON (acme-th200), one reading per message": (vendor, n),
        "baseline: one JSON object per reading per message": (one, n),
    }
    out = []
    for name, (payloads, k) in sizes.items():
        body = sum(len(p) for p in payloads)
        wire = body + len(payloads) * (MQTT_OVERHEAD + len(topic))
        out.append((name, body / k, wire / k))
    return out


@contextlib.contextmanager
def _broker(tls: bool, tmp: Path):
    """(broker, tls settings or None): plain LocalBroker, or the secured one."""
    if not tls:
        with LocalBroker(persistence=False) as broker:
            yield broker, None
        return
    from tests.live.secure_support import USERS, SecureBroker, make_certificates, temp_folder

    folder = temp_folder()  # readable by mosquitto's user, unlike tmp
    certs = make_certificates(folder)
    broker = SecureBroker(certs).start()
    try:
        yield broker, {"ca": str(certs["ca"]), "client": str(certs["client"]),
                       "client_key": str(certs["client_key"]), "user": "device",
                       "password": USERS["device"], "serve_password": USERS["tsfleet"]}
    finally:
        broker.close()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    import sys
    if "--source" in sys.argv and "chirpstack" in sys.argv:  # bench/live_chirpstack.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from live_chirpstack import main as chirpstack_main
        return chirpstack_main(sys.argv[1:])
    if "--source" in sys.argv and "sparkplug" in sys.argv:  # bench/live_sparkplug.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from live_sparkplug import main as sparkplug_main
        return sparkplug_main(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=50_000, help="readings/s offered")
    ap.add_argument("--pack", type=int, default=50, help="records per SenML pack")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--baseline-seconds", type=float, default=8)
    ap.add_argument("--tls", action="store_true",
                    help="MQTT over TLS with users, an ACL and client certificates (the "
                         "secured mosquitto of tests/live/secure_support.py)")
    args = ap.parse_args()

    print("bytes per reading (same 50 temperature readings of one device):")
    rows = bytes_per_reading(args.pack)
    base_wire = rows[-1][2]
    for name, body, wire in rows:
        print(f"  {name:<52} {body:7.1f} B payload  {wire:7.1f} B on the wire "
              f"({base_wire / wire:5.1f}x smaller than baseline)")
    with tempfile.TemporaryDirectory() as tmp, _broker(args.tls, Path(tmp)) as (broker, tls):
        pid = broker.proc.pid if broker.proc else None
        port = broker.tls_port if tls else broker.port
        res = run(port, str(Path(tmp) / "bench.duckdb"), args.rate, args.pack,
                  args.seconds, args.devices, "bench-packs", pid, tls)
        base = run(port, str(Path(tmp) / "base.duckdb"), 0, 1, args.baseline_seconds,
                   args.devices, "bench-base", None, tls)
    plain = None
    if args.tls:  # the same packs over plain MQTT, in the same run: what TLS costs
        with tempfile.TemporaryDirectory() as tmp, _broker(False, Path(tmp)) as (broker, _):
            plain = run(broker.port, str(Path(tmp) / "plain.duckdb"), args.rate, args.pack,
                        args.seconds, args.devices, "bench-plain",
                        broker.proc.pid if broker.proc else None, None)
    kind = "MQTT over TLS (client certificates, password users)" if tls else "plain MQTT"
    print(f"\ntransport: {kind}")
    print(f"\nSenML JSON packs of {args.pack}, offered {args.rate:,.0f} readings/s for "
          f"{args.seconds:.0f} s:")
    print(f"  stored {res['readings']:,} readings from {res['messages']:,} messages in "
          f"{res['batches']} commits")
    print(f"  publisher   {res['published_rate']:,.0f} readings/s achieved of the offer")
    print(f"  throughput  {res['sustained']:,.0f} readings/s sustained (commit rate, first to "
          f"last but one commit; target >= 50,000)")
    print(f"              {res['throughput']:,.0f} readings/s end to end (first publish to last "
          f"commit, {res['elapsed_s']:.1f} s)")
    print(f"  latency     p50 {res['p50_s']:.2f} s, p99 {res['p99_s']:.2f} s, max "
          f"{res['max_s']:.2f} s publish->committed   (target p99 <= 2 s)")
    print(f"  server CPU  {res['cpu_s'] / max(res['readings'], 1) * 1e6:.1f} us per reading "
          f"(all its threads, DuckDB's included): {res['readings'] / res['cpu_s']:,.0f} "
          f"readings per CPU-second")
    per = {k: res[k] / max(res["readings"], 1) * 1e6
           for k in ("cpu_s", "publisher_cpu_s", "broker_cpu_s")}
    total = sum(per.values())
    print(f"  all CPU     {total:.1f} us per reading = server {per['cpu_s']:.1f} + publisher "
          f"{per['publisher_cpu_s']:.1f} + mosquitto {per['broker_cpu_s']:.1f}: "
          f"{os.cpu_count()} idle cores would carry at most "
          f"{os.cpu_count() * 1e6 / total:,.0f} readings/s")
    print(f"  server CPU  {res['cpu_s'] / max(res['readings'], 1) * 1e5:.2f} s per 100,000 "
          f"readings (independent of the machine's load)")
    load = os.getloadavg()[0]
    print(f"  load average during the run: {load:.1f} on {os.cpu_count()} cores")
    if plain is not None:
        print(f"plain MQTT, the same packs and offer, same run (load {os.getloadavg()[0]:.1f}):")
        print(f"  throughput  {plain['sustained']:,.0f} readings/s sustained, p99 "
              f"{plain['p99_s']:.2f} s, server CPU "
              f"{plain['cpu_s'] / max(plain['readings'], 1) * 1e5:.2f} s per 100,000 readings")
        per_tls = res["cpu_s"] / max(res["readings"], 1)
        per_plain = plain["cpu_s"] / max(plain["readings"], 1)
        print(f"ratio TLS / plain: throughput {res['sustained'] / plain['sustained']:.2f}x, "
              f"server CPU per reading {per_tls / per_plain:.2f}x")
    print(f"baseline, one reading per message, publisher flat out for "
          f"{args.baseline_seconds:.0f} s:")
    print(f"  throughput  {base['throughput']:,.0f} readings/s, p99 {base['p99_s']:.2f} s")
    print(f"ratio packs / one-per-message: {res['throughput'] / base['throughput']:.1f}x; "
          f"against the seed's 1,000/s: {res['throughput'] / 1000:.0f}x")


if __name__ == "__main__":
    main()
