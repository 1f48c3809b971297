"""What `serve --metrics` costs: CPU of answering scrapes, at 1,000 readings/s (target < 1%).

Two measurements in one run, with a publisher offering ``--rate`` readings/s:

1. direct: the CPU time the metrics code itself spends (the HTTP handler's thread time
   per scrape, and the freshness copy on the writer thread), over the run's wall time,
   as a percentage of one core; the scraper is a separate process (it is Prometheus's
   CPU, not serve's) that GETs /metrics every ``--scrape-every`` seconds;
2. A/B: the whole server's CPU per second with metrics and scrapes, and without them
   (baseline, same offer). On a loaded machine this difference is noisy; the direct
   figure is the one to quote.

    PYTHONPATH=. python bench/metrics_overhead.py --seconds 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.live import publisher
from tsfleet.live.broker import LocalBroker, free_port
from tsfleet.live.server import ServeConfig, Server


def scraper(url: str, every: float, seconds: float, count) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
            count.value += 1
        except OSError:
            pass
        time.sleep(every)


def run(port: int, db: str, rate: float, seconds: float, metrics: bool, every: float) -> dict:
    mport = free_port() if metrics else None
    srv = Server(ServeConfig(db=db, mqtt=f"127.0.0.1:{port}", client_id=f"bench-m-{metrics}",
                             metrics=f"127.0.0.1:{mport}" if metrics else None))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    srv.ready.wait(30)
    srv.subscriber.subscribed.wait(30)
    ctx = mp.get_context("spawn")
    n_scrapes = ctx.Value("i", 0)
    procs = [ctx.Process(target=publisher, args=(port, rate, 10, seconds, 100))]
    if metrics:
        procs.append(ctx.Process(target=scraper, args=(f"http://127.0.0.1:{mport}/metrics",
                                                       every, seconds, n_scrapes)))
    cpu0, t0 = time.process_time(), time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    srv.writer.sync(30)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    out = {"wall_s": wall, "cpu_s": cpu, "readings": srv.writer.stats.n_accepted,
           "scrapes": n_scrapes.value, "load": os.getloadavg()[0]}
    if metrics:
        out["handler_cpu_s"] = srv.metrics_endpoint.cpu_s
        out["refresh_cpu_s"] = srv.metrics.refresh_cpu_s
    srv.stop()
    th.join(60)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000, help="readings/s offered")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--scrape-every", type=float, default=1.0,
                    help="seconds between scrapes (Prometheus's default is 15 s; 1 s is "
                         "the harsh case)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalBroker(persistence=False) as broker:
        on = run(broker.port, str(Path(tmp) / "on.duckdb"), args.rate, args.seconds, True,
                 args.scrape_every)
        off = run(broker.port, str(Path(tmp) / "off.duckdb"), args.rate, args.seconds, False,
                  args.scrape_every)
    direct = (on["handler_cpu_s"] + on["refresh_cpu_s"]) / on["wall_s"] * 100
    per_scrape_ms = on["handler_cpu_s"] / max(on["scrapes"], 1) * 1e3
    print(f"offer {args.rate:,.0f} readings/s for {args.seconds:.0f} s, a scrape every "
          f"{args.scrape_every:g} s")
    print(f"  metrics on : {on['readings']:,} readings, {on['scrapes']} scrapes, server CPU "
          f"{on['cpu_s'] / on['wall_s'] * 100:.2f}% of a core (load {on['load']:.1f})")
    print(f"  metrics off: {off['readings']:,} readings, server CPU "
          f"{off['cpu_s'] / off['wall_s'] * 100:.2f}% of a core (load {off['load']:.1f})")
    print(f"  direct cost: handler {per_scrape_ms:.2f} ms CPU per scrape, freshness copy "
          f"{on['refresh_cpu_s']:.3f} s in total: {direct:.3f}% of a core (target < 1%)")
    diff = (on["cpu_s"] / on["wall_s"] - off["cpu_s"] / off["wall_s"]) * 100
    print(f"  A/B difference: {diff:+.2f}% of a core (noisy under load)")


if __name__ == "__main__":
    main()
