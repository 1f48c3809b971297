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
                 publisher_args: list[tuple]) -> dict:
    """Run ``serve``'s Server on ``cfg`` in a thread, the publisher processes
    ``target(*args)`` (one per entry of ``publisher_args``), then let the backlog drain
    (at most 60 s: until a second passes with no new commit) and stop the server.
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
    while time.time() < deadline:
        srv.writer.sync(30)
        with lock:
            total = sum(n for _, n in commits)
        if total == last:
            break
        last = total
        time.sleep(1.0)
    cpu = time.process_time() - cpu0
    load1 = os.getloadavg()[0]
    before_stop = {"received": srv.n_received}
    if cfg.db:
        before_stop["stored"] = srv.fleet.query("select count(*) as n from readings")[0]["n"]
        before_stop["reasons"] = srv.fleet.query(
            "select reason, any_value(detail) as detail, count(*) as n from quarantine "
            "group by reason order by n desc")
    srv.stop()
    th.join(60)
    with lock:
        commits.sort()
        steady = float("nan")
        if len(commits) >= 3 and commits[-2][0] > commits[0][0]:
            steady = sum(n for _, n in commits[1:-1]) / (commits[-2][0] - commits[0][0])
    return {"cpu_s": cpu, "load": (load0 + load1) / 2, "sustained": steady, "server": srv,
            **before_stop}


def paced(per_s: float, seconds: float):
    """Yield (i, now) ``per_s`` times a second for ``seconds``: the publishers' clock.
    A publisher that falls behind catches up at once (its offer, not its pace, counts)."""
    start = time.time()
    i = 0
    while True:
        now = time.time()
        if now - start >= seconds:
            return
        due = start + i / per_s
        if due > now:
            time.sleep(min(due - now, 0.01))
            continue
        yield i, now
        i += 1
