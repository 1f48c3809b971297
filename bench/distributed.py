"""Benchmark of the distributed analyses (issue 27): one node vs a LocalCluster of 1 and 2.

    PYTHONPATH=. python bench/distributed.py                          # a few minutes
    PYTHONPATH=. python bench/distributed.py --devices 100000 --days 30

Simulates a fleet into a store, exports it as the 16-bucket lake, then times the four
distributed analyses (firmware, power, calibration, environment):

- single node: ``fleet.analyze(only=<the four>, force=True)`` (the baseline);
- ``fleet.analyze(engine="dask")`` on a LocalCluster of 1 worker, then of 2 workers
  (processes, one thread each; the cluster is started and warmed before the clock);
- the scheduler overhead per task: ``client.map`` of a no-op.

Prints the times, the 1 -> 2 worker ratio (target >= 1.7x on 2 cores), the Amdahl bound
that the measured serial part allows, and a projection to 16 workers from the measured
per-task cost: each task's compute time from Dask's task stream (1-worker run), a bucket
phase on 16 workers lasting as long as its slowest task, plus the serial part as
measured: the time no bucket task or fit was outstanding (the coordinator's fleet steps,
attaches and writer-side firmware steps that no worker task overlapped; the domains'
phases overlap, see tsfleet.scaleout.engine).
Load averages are printed before and after each run: other jobs on the cores lower the
speed-up. First, the machine's own ceiling: a pure-Python loop in one process, then in two
at once (``--no-ceiling`` skips it): two cores that slow each other cap any 1 -> 2 speed-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# this file's name is the package's: keep its folder off the path, so that
# ``import distributed`` finds Dask's
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from tsfleet import Fleet  # noqa: E402
from tsfleet.cliutil import print_sentences  # noqa: E402
from tsfleet.scaleout import run_dask  # noqa: E402
from tsfleet.scaleout.engine import worker_environ  # noqa: E402
from tsfleet.simulate import SimConfig, simulated_fleet  # noqa: E402

ONLY = "firmware,power,calibration,environment"
#: the phases run as tasks on the workers: the bucket phases and the fleet steps' fits
BUCKET_PHASES = ("stats", "apply", "fits")


def say(text: str) -> None:
    """``text`` wrapped to the CLI's 120 columns (tsfleet.cliutil.print_sentences), at its
    own indentation, continuation lines 6 columns further in."""
    body = text.lstrip(" ")
    print_sentences([body], indent=" " * (len(text) - len(body)), hang=6)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


def warm() -> None:
    """Import what the tasks import, so worker start-up is not timed."""
    import statsmodels.tsa.holtwinters  # noqa: F401 - the power fits' import (seconds)

    import tsfleet.calibration.api  # noqa: F401
    import tsfleet.environment.api  # noqa: F401
    import tsfleet.firmware.api  # noqa: F401
    import tsfleet.power.api  # noqa: F401
    from tsfleet.scaleout import lake

    lake._template()


def noop(i: int) -> int:
    return i


def spin(n: int) -> float:
    """A pure-Python loop of ``n`` steps; its wall seconds."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - t


def machine_ceiling(n: int = 40_000_000, repeat: int = 2) -> tuple[float, list[float]]:
    """How much more CPU-bound work two processes do than one on this machine: the same loop
    in one process, then in two at once (their slower one), ``repeat`` times; the best
    ratio (one's time x 2 / the pair's) and all of them. On a machine whose two cores slow
    each other (virtual CPUs, shared caches, clocks), no 1 -> 2 speed-up can exceed it."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ratios = []
    with ctx.Pool(2) as pool:
        pool.map(spin, [1000, 1000])                       # started before the clock
        for _ in range(repeat):
            one = pool.apply(spin, (n,))
            two = max(pool.map(spin, [n, n], chunksize=1))
            ratios.append(2 * one / two)
    return max(ratios), ratios


def cpu_seconds() -> float:
    """This process's CPU seconds, every thread (a worker's tasks; the coordinator's
    fleet steps with their DuckDB threads, and the LocalCluster's scheduler)."""
    return time.process_time()


def timed_cluster(store: Path, lake: Path, workers: int
                  ) -> tuple[float, object, float, list[dict], dict[str, float]]:
    """One timed distributed run; returns its seconds, the run, the no-op overhead per
    task, the task stream (one dict per task: key, startstops) and the CPU seconds of
    the coordinator and of the workers during the run."""
    from distributed import Client, LocalCluster, get_task_stream

    with worker_environ():      # the workers' environment of tsfleet's own LocalCluster
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(cluster)
    client.run(warm)
    n = 400
    t = time.perf_counter()
    client.gather(client.map(noop, range(n), pure=False))
    overhead = (time.perf_counter() - t) / n
    print(f"  {workers} worker(s): {load()} before")
    with Fleet(str(store)) as fleet, get_task_stream(client=client) as stream:
        w0, c0 = client.run(cpu_seconds), cpu_seconds()
        t = time.perf_counter()
        run = run_dask_on(fleet, lake, cluster.scheduler_address)
        seconds = time.perf_counter() - t
        w1, c1 = client.run(cpu_seconds), cpu_seconds()
    cpu = {"coordinator": c1 - c0, "workers": sum(w1[k] - w0[k] for k in w1)}
    client.close()
    cluster.close()
    print(f"  {workers} worker(s): {seconds:.1f} s; {load()} after")
    spans = run.spans(BUCKET_PHASES)
    for o in run.outcomes:
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in o.phase_s.items())
        on = ", ".join(f"{p} {a - t:.1f}-{b - t:.1f} s" for d, p, a, b in spans
                       if d == o.domain and p != "fits")
        say(f"    {o.domain}: {phases}; failed buckets: {len(o.failed)}; on the workers "
            f"(submitted - collected, from the run's start): {on}")
    parallel = worker_wall(run)
    say(f"    CPU: coordinator {cpu['coordinator']:.1f} s, workers {cpu['workers']:.1f} s "
        f"= {100 * cpu['workers'] / (parallel * workers):.0f}% of {workers} core(s) over "
        f"the bucket phases ({parallel:.1f} s)")
    return seconds, run, overhead, [t for t in stream.data if str(t["key"]).startswith(
        "tsfleet-")], cpu


def worker_wall(run) -> float:
    """Wall seconds during which some bucket phase or fit was submitted and not yet
    collected: the union of the run's spans (the domains' phases overlap, so their
    ``phase_s`` is the coordinator's wait for each, not the time they took)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted((a, b) for _, _, a, b in run.spans(BUCKET_PHASES)):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def task_seconds(stream: list[dict]) -> dict[str, list[float]]:
    """Compute seconds of each task, per (domain, phase): from the task stream."""
    out: dict[str, list[float]] = {}
    for t in stream:
        _, domain, phase, *_ = str(t["key"]).split("-")
        busy = sum(s["stop"] - s["start"] for s in t["startstops"]
                   if s["action"] == "compute")
        out.setdefault(f"{domain} {phase}", []).append(busy)
    return out




def run_dask_on(fleet: Fleet, lake: Path, scheduler: str):
    return run_dask(fleet, lake, only=ONLY, scheduler=scheduler)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1500)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--buckets", type=int, default=16)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1,
                    help="alternate the 1- and 2-worker runs this many times; the fastest "
                    "of each is reported (other jobs on the cores come and go)")
    ap.add_argument("--dir", default=None, help="working directory (default: a temp dir)")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip the machine's own 1 -> 2 process ceiling (a pure-Python loop)")
    args = ap.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="tsfleet-bench-dask-"))
    work.mkdir(parents=True, exist_ok=True)
    base, lake = work / "base.duckdb", work / "lake"
    print(f"distributed bench: {args.devices:,} devices x {args.days} days, "
          f"{args.buckets} buckets, cpus {os.cpu_count()}; {load()}")
    t = time.perf_counter()
    for p in (base, lake):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    fleet = simulated_fleet(SimConfig(n_devices=args.devices, days=args.days, seed=args.seed),
                            path=str(base))
    n_readings = fleet.query("select count(*) as n from readings")[0]["n"]
    fleet.export(lake, buckets=args.buckets)
    fleet.close()
    print(f"  built: {n_readings:,} readings, exported in {time.perf_counter() - t:.0f} s")

    if args.ceiling:
        best, ratios = machine_ceiling()
        say(f"  machine: two processes of a pure-Python loop do {best:.2f}x the work of one "
            f"(runs: {', '.join(f'{r:.2f}x' for r in ratios)}): the ceiling of any 1 -> 2 "
            f"speed-up here; {load()}")

    single = work / "single.duckdb"
    Path(f"{single}.wal").unlink(missing_ok=True)
    shutil.copyfile(base, single)
    warm()
    print(f"  single node: {load()} before")
    with Fleet(str(single)) as f:
        t = time.perf_counter()
        res = f.analyze(only=ONLY, force=True)
        t_single = time.perf_counter() - t
    each = ", ".join(f"{r.analysis} {r.duration_s:.1f} s" for r in res)
    say(f"  single node: {t_single:.1f} s ({each}); {load()} after")

    times: dict[int, list] = {1: [], 2: []}
    for _ in range(args.repeat):
        for workers in (1, 2):
            store = work / f"dask{workers}.duckdb"
            # a WAL left by an interrupted run of the same --dir would not match the copy
            Path(f"{store}.wal").unlink(missing_ok=True)
            shutil.copyfile(base, store)
            times[workers].append(timed_cluster(store, lake, workers))
    if args.repeat > 1:
        say("  pairs (1 worker / 2 workers, in run order): " + ", ".join(
            f"{a[0]:.1f}/{b[0]:.1f} s = {a[0] / b[0]:.2f}x"
            for a, b in zip(times[1], times[2], strict=True)))
    # the fastest run of each: the one least slowed by other jobs on the cores
    t1, run1, overhead, stream1, cpu1 = min(times[1], key=lambda r: r[0])
    t2, run2, overhead2, _, _ = min(times[2], key=lambda r: r[0])
    per_phase = task_seconds(stream1)
    n_tasks = sum(len(v) for v in per_phase.values())
    busy = sum(sum(v) for v in per_phase.values())
    parallel = worker_wall(run1)
    serial = t1 - parallel
    serial2 = t2 - worker_wall(run2)
    bound = t1 / (serial + parallel / 2)
    # 16 workers: each phase's tasks in parallel (ceil(tasks / 16) waves of its slowest)
    t16 = serial + sum(-(-len(v) // 16) * max(v) for v in per_phase.values())
    print(f"\n  single node            {t_single:8.1f} s (baseline)")
    print(f"  dask, 1 worker         {t1:8.1f} s ({t_single / t1:.2f}x the single node)")
    print(f"  dask, 2 workers        {t2:8.1f} s ({t_single / t2:.2f}x the single node)")
    say(f"  speed-up 1 -> 2        {t1 / t2:8.2f}x (target >= 1.7x; Amdahl bound of the "
        f"measured serial part: {bound:.2f}x)")
    say(f"  serial (coordinator)   {serial:8.1f} s at 1 worker, {serial2:.1f} s at 2 "
        f"({100 * serial / t1:.0f}% of the 1-worker run)")
    say(f"  scheduler overhead     {overhead * 1e3:8.2f} ms per task (1 worker), "
        f"{overhead2 * 1e3:.2f} ms (2 workers); bucket phases {parallel:.1f} s wall for "
        f"{busy:.1f} s of task compute at 1 worker")
    say(f"  per-task cost          {busy / n_tasks:8.2f} s mean over {n_tasks} tasks; "
        + ", ".join(f"{k} {sum(v) / len(v):.2f} s (max {max(v):.2f})"
                    for k, v in per_phase.items()))
    # CPU seconds do not depend on what else runs on the cores: on 2 idle cores the
    # workers' CPU divides over the workers and the coordinator's does not
    c, w = cpu1["coordinator"], cpu1["workers"]
    say(f"  CPU, 1-worker run      {c:8.1f} s coordinator + {w:.1f} s worker: on idle cores "
        f"(projected) {c + w:.1f} s at 1 worker, {c + w / 2:.1f} s at 2 = "
        f"{(c + w) / (c + w / 2):.2f}x")
    say(f"  projected, 16 workers  {t16:8.1f} s (serial part as measured + the slowest "
        f"task of each phase; {t1 / t16:.1f}x 1 worker)")
    print(f"  {load()}")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
