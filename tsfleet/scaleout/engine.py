"""Running the bucket tasks on Dask distributed: a scheduler given, or a LocalCluster.

``client.submit(analyze_bucket, bucket)`` for every bucket, the buckets with the most
devices first, with one retry: a task whose worker dies or
that raises is run once more (on any worker); a bucket that fails twice is reported
with its error, one line, and the other buckets' results are still written and
attached. Re-running is idempotent: every partition is replaced, never appended to.

The domains overlap on the workers: the first bucket phase (``stats``) of every
domain is submitted at the start, since it reads only the lake, and the coordinator
then collects, runs the fleet steps and attaches domain by domain, in
:data:`COORDINATOR_ORDER` (the longest serial fleet step first), exactly as one after
the other, while the workers keep computing. Dask's ``priority`` keeps the order of
the work: an earlier domain's tasks, its second phase (submitted when its fleet step is
done) and its fleet step's fits run before a later domain's first phase, so the domain
the coordinator waits for is never queued behind another. ``DistributedRun.log``
records the submissions and the coordinator's steps.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tsfleet.domain import RunResult
from tsfleet.errors import InvalidParameter, TsfleetError
from tsfleet.results import now_utc
from tsfleet.scaleout import lake as lk
from tsfleet.scaleout.plan import DISTRIBUTED, DomainOutcome, Event, run_domain
from tsfleet.scaleout.tasks import BUCKET_BY, analyze_bucket
from tsfleet.share.partition import BUCKET_SQL, check_buckets

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

RETRIES = 1                 # a task is tried twice in all
#: the order the coordinator takes the domains in (and their tasks' priority): the
#: longest serial fleet step first (environment's model fits and scratch-store analysis),
#: so that the later domains' bucket tasks run on the workers meanwhile; firmware, whose
#: fleet step is an attach, last
COORDINATOR_ORDER = ("environment", "power", "calibration", "firmware")
CONNECT_TIMEOUT_S = 10
#: a domain's tasks' priority: its rank from the last domain (1) times this, plus the
#: bucket's devices (bucket phases) or this less one (fleet-step fits)
PRIORITY_STEP = 1 << 32


class SchedulerUnreachable(TsfleetError, ConnectionError):
    """The Dask scheduler named by ``--scheduler`` could not be reached."""


@dataclass
class DistributedRun:
    """What :func:`run_dask` did: one :class:`DomainOutcome` per domain, and the cluster."""

    outcomes: list[DomainOutcome] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    scheduler: str = ""
    n_workers: int = 0
    n_tasks: int = 0
    n_fit_tasks: int = 0    #: fleet-step fits run on the workers (not bucket tasks)
    seconds: float = 0.0
    #: what was submitted and what the coordinator did, in order (:class:`plan.Event`)
    log: list[Event] = field(default_factory=list)

    def spans(self, phases: Iterable[str] = ("stats", "apply", "fits")
              ) -> list[tuple[str, str, float, float]]:
        """(domain, phase, start, end) of each of ``phases``, ``time.perf_counter()``
        seconds: a bucket phase from its submission to its last result collected (the
        time some of its tasks were queued or running), a step of the coordinator from
        its start to its end."""
        wanted, out = set(phases), []
        opened: dict[tuple[str, str], float] = {}
        for e in self.log:
            if e.phase not in wanted:
                continue
            key = (e.domain, e.phase)
            if e.what == "submit" or (e.what == "start" and key not in opened):
                opened[key] = e.t
            elif e.what == "end":
                out.append((e.domain, e.phase, opened.pop(key), e.t))
        return out

    @property
    def failures(self) -> list[tuple[str, int, str]]:
        """(domain, bucket, error) of every bucket that failed twice."""
        return [(o.domain, b, e) for o in self.outcomes for b, e in sorted(o.failed.items())]


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


def open_client(scheduler: str | None, workers: int | None, processes: bool):
    """A Dask client of ``scheduler``, or of a new LocalCluster (returned to close)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:   # pragma: no cover - the extra is part of the test env
        raise TsfleetError("the dask engine needs the dask extra: pip install "
                           "'tsfleet[dask]'") from exc
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), None
        except Exception as exc:  # noqa: BLE001 - any failure to connect is one line
            error = one_line(exc)
        # the Client that failed to connect closes itself in __del__, whenever the garbage
        # collector gets to it: collected inside the next Client's start, it deadlocks
        # that start (seen: a second bad address hung in LoopRunner.stop), so now
        gc.collect()
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {scheduler!r}: "
                                   f"{error}")
    with worker_environ():
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


#: What a LocalCluster's worker processes get in their environment: one BLAS thread
#: (as Dask's default), but not Dask's default MALLOC_TRIM_THRESHOLD_=65536, with which
#: glibc returns memory after every large temporary array: the environment model's fit
#: took 3.1 CPU-s on a worker against 0.75-0.94 CPU-s without it (1,500 devices).
WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


#: Dask's housekeeping in a LocalCluster, slowed or off: the statistical profiler samples
#: each worker's threads every 10 ms for a dashboard tsfleet does not start, the event
#: loops tick every 20 ms, and every process polls its own CPU and memory every 0.1-0.5 s.
#: With these, the default bench (1,500 devices x 30 days, 3 alternating runs each, load
#: 1.1-4.7) took 25.6-29.3 worker CPU-s and 2.9-3.2 coordinator CPU-s against main's
#: 27.8-31.2 and 3.5-4.2 (docs/scaling.md, session 26). A worker still pauses or spills
#: on its memory limit, checked every second instead of every 0.1 s.
QUIET_CLUSTER = {"distributed.worker.profile.enabled": False,
                 "distributed.admin.tick.interval": "200ms",
                 "distributed.admin.system-monitor.interval": "2s",
                 "distributed.worker.memory.monitor-interval": "1s"}


def worker_environ():
    """Dask's config for the LocalCluster started inside the block: the worker processes'
    environment (:data:`WORKER_ENVIRON`) and the quieter housekeeping
    (:data:`QUIET_CLUSTER`)."""
    import dask

    return dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
                            **QUIET_CLUSTER})


def run_dask(fleet: Fleet, lake: str | Path, *, only: str | Iterable[str] | None = None,
             scheduler: str | None = None, buckets: int | None = None,
             workers: int | None = None, processes: bool = True,
             threads: int = 1) -> DistributedRun:
    """Run the distributed domains of ``only`` over ``lake`` on Dask, attach the results
    to ``fleet`` and record each run in ``analysis_runs``.

    ``scheduler``: ``tcp://host:8786``; without it a LocalCluster of ``workers`` (default:
    one per core) is started here and closed at the end. ``buckets``: the task count per
    phase (default: the lake's device buckets). ``threads``: DuckDB threads per task.
    """
    from tsfleet.service.runner import parse_only

    fleet.require_writable()
    root = Path(lake).resolve()
    n = lk.lake_buckets(root) if buckets is None else check_buckets(buckets)
    names = DISTRIBUTED if only is None else parse_only(only)
    other = [d for d in names if d not in DISTRIBUTED]
    if other:
        raise InvalidParameter(f"the dask engine runs {', '.join(DISTRIBUTED)}; "
                               f"{', '.join(other)} run(s) on the store: use --only "
                               f"{','.join(d for d in names if d in DISTRIBUTED) or 'power'}")
    names = sorted(names, key=COORDINATOR_ORDER.index)
    run = DistributedRun()
    t0 = time.perf_counter()
    client, cluster = open_client(scheduler, workers, processes)
    try:
        run.scheduler = client.scheduler.address
        run.n_workers = len(client.scheduler_info()["workers"])
        token = uuid.uuid4().hex[:8]
        # the earlier domain first: the coordinator waits for the domains in this order
        rank = {name: len(names) - i for i, name in enumerate(names)}
        submitted: dict[tuple[str, str], dict] = {}
        started: dict[str, tuple] = {}     # domain -> (now_utc(), perf_counter())

        def submit(domain: str, phase: str, shared: dict | None) -> None:
            # the largest buckets first: the phase ends when its last task does, so a
            # large bucket started last would leave the other workers idle meanwhile
            weight = bucket_weights(fleet, domain, n)
            base = rank[domain] * PRIORITY_STEP
            priority = [base + min(w, PRIORITY_STEP - 2) for w in weight]
            started.setdefault(domain, (now_utc(), time.perf_counter()))
            run.log.append(Event(time.perf_counter(), domain, "submit", phase,
                                 (min(priority), max(priority))))
            submitted[(domain, phase)] = {b: client.submit(
                analyze_bucket, str(root), b, domain, shared, phase=phase, buckets=n,
                threads=threads, retries=RETRIES, pure=False, priority=priority[b],
                key=f"tsfleet-{domain}-{phase}-{b}-{token}")
                for b in sorted(range(n), key=lambda b: -weight[b])}
            run.n_tasks += n

        def mapper(domain: str, phase: str, shared: dict | None):
            if (domain, phase) not in submitted:
                submit(domain, phase, shared)
            futures = submitted.pop((domain, phase))
            ok, failed = {}, {}
            for b, fut in sorted(futures.items()):
                try:
                    ok[b] = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported per bucket by design
                    failed[b] = one_line(exc)
            return ok, failed

        def fit_map(domain: str):
            # the independent fits of a fleet step, on the workers: with more workers
            # they run side by side instead of one after the other in the coordinator;
            # before any bucket task, since the coordinator waits for them
            def map_fn(fn, items):
                items = list(items)
                i0 = run.n_fit_tasks
                run.n_fit_tasks += len(items)
                priority = (rank[domain] + 1) * PRIORITY_STEP - 1
                run.log.append(Event(time.perf_counter(), domain, "submit", "fits",
                                     (priority, priority)))
                # the function goes to the workers once, as data: environment's carries
                # the fleet's model cells (18 MB at 10,000 devices), which as part of
                # every task's graph went through the scheduler once per task
                shipped = client.scatter(fn, hash=False)
                futures = client.map(_call, [shipped] * len(items), items, pure=False,
                                     retries=RETRIES, priority=priority,
                                     key=[f"tsfleet-{domain}-fit-{i0 + i}-{token}"
                                          for i in range(len(items))])
                try:
                    return client.gather(futures)
                finally:
                    shipped.release()
            return map_fn

        # every domain's first phase now: it reads only the lake (plan's module doc)
        for name in names:
            submit(name, "stats", None)
        for name in names:
            run.outcomes.append(_record(fleet, root, name, n, mapper, fit_map, run.log,
                                        started.get(name)))
            run.results.append(run.outcomes[-1].result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    run.seconds = time.perf_counter() - t0
    return run


def _call(fn, item):
    """``fn(item)`` on a worker, ``fn`` scattered there beforehand (run_dask's fit_map)."""
    return fn(item)


def bucket_weights(fleet: Fleet, domain: str, n: int) -> list[int]:
    """The devices of each of the ``n`` buckets of ``domain`` (device or zone hash), in the
    store's registry: the order to submit the tasks in."""
    key = BUCKET_SQL if BUCKET_BY[domain] == "device" else BUCKET_SQL.replace(
        "device_id", "coalesce(zone, '')")
    counts = dict(fleet.con.execute(f"select {key} as b, count(*) from devices group by b",
                                    [n]).fetchall())
    return [int(counts.get(b, 0)) for b in range(n)]


def _record(fleet: Fleet, root: Path, name: str, n: int, mapper, fit_map,
            log: list | None = None, started: tuple | None = None) -> DomainOutcome:
    """One domain, recorded like a single-node run (analysis_runs, device cards).

    ``started``: (timestamp, ``perf_counter``) of the submission of the domain's first
    tasks, which is the run's start when the phases overlap: the row's ``started_at``,
    and its ``duration_s`` runs from it to the domain's results attached (the domains'
    spans overlap, so they do not add up to the run's wall time)."""
    from tsfleet.service.snapshots import finding_keys, refresh_card_tables

    con = fleet.con
    max_batch = con.execute(
        "select coalesce(max(batch_id), 0) from ingest_batches").fetchall()[0][0]
    last = con.execute("select max(to_batch_id) from analysis_runs where analysis = ? "
                       "and status = 'ok'", [name]).fetchall()[0][0]
    started, t0 = started or (now_utc(), time.perf_counter())
    before = finding_keys(con, name)
    out = run_domain(fleet, root, name, n, mapper, fit_map, log)
    refresh_card_tables(con, name)
    after = finding_keys(con, name)
    error = (f"{len(out.failed)} of {n} buckets failed: "
             + "; ".join(f"{b}: {e}" for b, e in sorted(out.failed.items())))[:2000]
    result = RunResult(name, "failed" if out.failed else "ok", time.perf_counter() - t0,
                       out.n_rows, error if out.failed else None, False, len(after),
                       len(after - before), len(before - after),
                       failed_buckets=dict(sorted(out.failed.items())) if out.failed else None)
    until = con.execute("select max(max_observed_at) from ingest_batches where batch_id <= ?",
                        [max_batch]).fetchall()[0][0]
    con.execute(
        "insert into analysis_runs values (nextval('analysis_run_seq'), ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?)",
        [name, started, now_utc(), result.duration_s, result.status, result.error,
         result.n_items, result.incremental, last, max_batch, until])
    out.result = result
    return out
