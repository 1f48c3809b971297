"""The device card through serve's control interface while serve ingests (issue 23).

    python bench/control.py                          # 200 devices, 20 s of ingest
    python bench/control.py --devices 2000 --seconds 60 --rate 5000

Builds a demo store, starts mosquitto and ``tsfleet serve`` (child processes), publishes
SenML packs at ``--rate`` readings/s, and meanwhile asks serve for device cards
(``tsfleet device ID --format json`` sent to ``POST /cli``, as the CLI forwards it, one
request at a time) and, between cards, the other reads (``sql``, ``alerts list``,
``workorders --no-plan``), counting failures. Then it stops serve and reads the same
cards directly from the stopped store (``tsfleet.cli.main`` in this process: open the
store read-only, build the card, print it): the baseline. Printed: p50/p99 of both,
their ratio, readings committed, and the load average. Target: p99 <= 100 ms through
the interface. A fresh ``tsfleet`` process adds its interpreter start (see
bench/cli_start.py) to either.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsfleet.cli import main  # noqa: E402
from tsfleet.live.broker import LocalBroker  # noqa: E402
from tsfleet.remote import find_server, run_remote  # noqa: E402

T0 = 1_780_000_000


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def publisher(port: int, rate: int, stop: threading.Event, sent: list[int]) -> None:
    import paho.mqtt.client as mqtt

    from tsfleet.live.senml import encode_json
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-control-pub")
    client.connect("127.0.0.1", port)
    client.loop_start()
    per, i, t = 50, 0, time.perf_counter()
    while not stop.is_set():
        dev = f"bench-{i % 500}"
        pack = [{"bn": f"{dev}:", "bt": T0 + i, "n": "temp", "u": "Cel", "v": 20.0}]
        pack += [{"n": "temp", "u": "Cel", "v": 20.0, "t": k} for k in range(1, per)]
        client.publish(f"fleet/{dev}/senml", encode_json(pack), qos=1)
        sent[0] += per
        i += 1
        t += per / rate
        time.sleep(max(0.0, t - time.perf_counter()))
    client.loop_stop()
    client.disconnect()


def direct(db: str, argv: list[str]) -> float:
    out = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(out):
        rc = main(["--db", db, *argv])
    assert rc == 0, argv
    return time.perf_counter() - t


def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="tsfleet-bench-control-"))
    db = str(work / "plant.duckdb")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--devices", str(args.devices), "--days", str(args.days),
                     "--db", db]) == 0
    ids = [r.strip() for r in subprocess.run(
        [sys.executable, "-m", "tsfleet", "--db", db, "sql", "select device_id from devices",
         "--format", "csv"], capture_output=True, text=True, check=True).stdout.split()[1:]]
    broker = LocalBroker().start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "tsfleet", "serve", "--db", db, "--mqtt",
         f"127.0.0.1:{broker.port}", "--analyze-every", args.analyze_every],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (advert := find_server(db)) is None:
            assert serve.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        stop, sent = threading.Event(), [0]
        pub = threading.Thread(target=publisher, args=(broker.port, args.rate, stop, sent))
        pub.start()
        rng = random.Random(args.seed)
        cards, other, failures = [], {"sql": 0, "alerts list": 0, "workorders": 0}, 0
        others = [("sql", ["sql", "select count(*) from readings"]),
                  ("alerts list", ["alerts", "list"]),
                  ("workorders", ["workorders", "--no-plan"])]
        t_end = time.monotonic() + args.seconds
        k = 0
        while time.monotonic() < t_end:
            device = rng.choice(ids)
            t = time.perf_counter()
            answer = run_remote(advert, ["device", device, "--format", "json"])
            cards.append(time.perf_counter() - t)
            failures += answer["rc"] != 0
            k += 1
            if k % 10 == 0:
                name, argv = others[(k // 10) % len(others)]
                failures += run_remote(advert, argv)["rc"] != 0
                other[name] += 1
        stop.set()
        pub.join(30)
        committed = json.loads(run_remote(advert, [
            "sql", "select count(*) as n from readings where device_id like 'bench-%'",
            "--format", "json"])["stdout"])[0]["n"]
        load = os.getloadavg()
        serve.send_signal(signal.SIGTERM)
        serve.wait(120)
    finally:
        if serve.poll() is None:
            serve.kill()
        broker.close()
    baseline = [direct(db, ["device", rng.choice(ids), "--format", "json"])
                for _ in range(min(len(cards), args.baseline_runs))]
    p99, b99 = pct(cards, 0.99), pct(baseline, 0.99)
    print(f"device card through serve while it ingests: n={len(cards)}, "
          f"p50 {pct(cards, 0.5) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms (target <= 100 ms); "
          f"failures {failures} (also {other})")
    print(f"baseline, the card read directly from the stopped store: n={len(baseline)}, "
          f"p50 {pct(baseline, 0.5) * 1e3:.1f} ms, p99 {b99 * 1e3:.1f} ms; "
          f"ratio p99 {p99 / b99:.2f}")
    print(f"ingest meanwhile: {sent[0]:,} readings published at {args.rate:,}/s offered, "
          f"{committed:,} committed; {args.devices} devices x {args.days} days store; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=200, help="devices of the demo store")
    p.add_argument("--days", type=int, default=10, help="days of the demo store")
    p.add_argument("--seconds", type=float, default=20, help="seconds of ingest and cards")
    p.add_argument("--rate", type=int, default=2000, help="readings/s published")
    p.add_argument("--analyze-every", default="off",
                   help="serve's --analyze-every (default off: the card alone)")
    p.add_argument("--baseline-runs", type=int, default=200, help="direct cards measured")
    p.add_argument("--seed", type=int, default=1, help="which devices are asked for")
    run(p.parse_args())
