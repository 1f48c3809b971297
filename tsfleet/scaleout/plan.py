"""The two-phase plan of each distributed domain, and the fleet steps between the phases.

A domain whose per-device results depend on parameters pooled over the fleet runs in
two phases so that a distributed run gives the answers of a single-node run:

1. every bucket computes what the pooled step needs (``stats``);
2. the fleet step pools it once, here, in the coordinator;
3. every bucket applies the pooled values to its devices (``apply``).

Then the result partitions are attached to the store as the usual tables, and the
domain's fleet-level steps (power: replacement plan and drain attribution;
calibration: stability and schedule) run there on the collected results, as
``analyze()`` runs them after its per-device step.

Environment and firmware need no third step: what a bucket computes (``stats``) is all
the per-device work, and the fleet step runs once on the collected rows.

- environment: each bucket writes its monitors' hourly sums and its devices' outcomes;
  the coordinator runs ``Environment.analyze()`` itself on a scratch store holding the
  dimension tables, those sums (as hourly rollup rows, the form the domain already reads
  aged-out hours in) and the outcomes (as a table in place of the view that scans the
  readings): zone environment, models, envelopes, stress, limits and recommendations
  come from the domain's own code, once, and are copied into the store. Per-device
  application is part of that step: stress percentiles and maintenance ranks are
  fleet-wide and vectorized over one row per device, so a bucket pass would only add a
  round trip. When a bucket fails twice the store keeps its earlier environment results:
  the fleet step on part of the monitors would change every zone's answer.
- firmware: the writer-side steps (version ranks, advisories, the ingest-time checks of
  unchecked report batches) run on the store first (``Firmware.rank_and_check``): they
  write tables that ingest writes too (``DomainSpec.shares_ingest_tables``: in ``serve``
  they run on the writer thread) and check each batch exactly once, so they never run on
  a worker from a lake snapshot. Each bucket then computes its devices' post-update
  health (view ``firmware_update_device_health``, the part that scans readings), attached
  as ``firmware_device_health``, and the run records itself in ``firmware_health_source``:
  from then on the view ``firmware_update_device_health`` returns those stored rows
  without scanning the readings, and everything that reads it (the release verdicts of
  ``firmware_update_health``, ``fleet.firmware.health()``, ``tsfleet firmware health``)
  shows the distributed answers; the per-device health is computed once, on the workers.
  When a bucket fails twice the other buckets' rows are stored, but the views switch to
  the stored rows only if they read stored rows already (the failed bucket's earlier rows
  stay, as with power); after a single-node run they keep computing from the readings,
  so that no device's health goes missing.

``mapper(domain, phase, shared)`` runs a phase over every bucket on some engine and
returns ``{bucket: paths}`` for the buckets that succeeded and ``{bucket: error}``
for those that failed (:mod:`tsfleet.scaleout.engine`). An engine may have submitted
the ``stats`` phase long before: it reads only the lake, never another domain's
results or the store, so every domain's first phase can run while the coordinator
works through the domains one by one; the mapper then only collects it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from tsfleet.results import now_utc
from tsfleet.scaleout import lake as lk
from tsfleet.scaleout.tasks import (
    BUCKET_BY,
    CALIBRATION_RESULTS,
    CALIBRATION_STATS,
    ENVIRONMENT_STATS,
    EXTRA_WHOLE,
    FIRMWARE_RESULTS,
    HORIZON_DAYS,
    ONE_PHASE,
    POWER_RESULTS,
    POWER_STATS,
    load_day_stats,
    mark_refreshed,
)
from tsfleet.share.partition import BUCKET_SQL
from tsfleet.store import quote_ident as q
from tsfleet.store import transaction

#: The domains that run distributed, in the registry's run order.
DISTRIBUTED = ("firmware", "power", "calibration", "environment")
#: The environment's result tables, copied from the coordinator's scratch store.
ENVIRONMENT_RESULTS = (
    "environment_zone_hourly", "environment_zone_factor_hourly", "environment_gaps",
    "environment_monitor_faults", "environment_envelopes", "environment_model",
    "environment_device_exposure", "environment_effects", "environment_limits",
    "environment_recommendations")

Mapper = Callable[[str, str, "dict | None"], "tuple[dict[int, list[str]], dict[int, str]]"]
#: domain -> a map (fn, items) -> results that runs a fleet step's independent fits
FitMap = Callable[[str], Callable]


class Event(NamedTuple):
    """One entry of a run's log: ``what`` is ``submit`` (a bucket phase's tasks were
    submitted, by the engine), ``start`` or ``end`` (of a step in the coordinator:
    ``writer``, ``stats``/``apply`` (waiting for the phase's results), ``fleet``, ``fits``,
    ``attach``); ``t`` is ``time.perf_counter()``."""

    t: float
    domain: str
    what: str
    phase: str
    priority: tuple[int, int] | None = None   #: submit: the tasks' lowest and highest


@dataclass
class DomainOutcome:
    """One distributed domain run."""

    domain: str
    n_buckets: int
    failed: dict[int, str] = field(default_factory=dict)   #: bucket -> one-line error
    phase_s: dict[str, float] = field(default_factory=dict)   #: stats, fleet, apply, attach
    n_rows: int = 0           #: per-device rows attached
    result: object = None     #: the RunResult recorded in analysis_runs
    #: the run's event log, shared by its domains (:class:`Event`), or None
    log: list | None = field(default=None, repr=False)

    def event(self, what: str, phase: str, t: float | None = None) -> None:
        if self.log is not None:
            self.log.append(Event(time.perf_counter() if t is None else t, self.domain,
                                  what, phase))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name`` (``phase_s``; ``start`` and ``end`` in the
        log)."""
        t = time.perf_counter()
        self.event("start", name, t)
        try:
            yield
        finally:
            end = time.perf_counter()
            self.phase_s[name] = end - t
            self.event("end", name, end)

    def timed_map(self, map_fn):
        """``map_fn``, its calls timed together as phase ``fits`` (inside ``fleet``)."""
        def run(fn, items):
            t = time.perf_counter()
            self.event("start", "fits", t)
            try:
                return list(map_fn(fn, items))
            finally:
                end = time.perf_counter()
                self.phase_s["fits"] = self.phase_s.get("fits", 0.0) + end - t
                self.event("end", "fits", end)
        return run

    def mapped(self, mapper: Mapper, phase: str, shared) -> dict[int, list[str]]:
        """The bucket tasks of ``phase``, timed; their failures recorded; the buckets done
        (bucket -> what each wrote)."""
        with self.phase(phase):
            done, failed = mapper(self.domain, phase, shared)
        self.failed.update(failed)
        return done


def run_domain(fleet, lake: Path, domain: str, buckets: int, mapper: Mapper,
               fit_map: FitMap | None = None, log: list | None = None) -> DomainOutcome:
    """Both phases of ``domain`` over ``buckets``, the fleet steps, the attach.

    ``fit_map(domain)``: the map that runs the independent fits of a fleet step (power's
    per-type statsmodels fits, environment's model per outcome) on the engine's workers
    (default: ``map``, here). ``log``: a list the steps append their :class:`Event` to."""
    out = DomainOutcome(domain, buckets, log=log)
    map_fn = out.timed_map(fit_map(domain) if fit_map else map)
    if domain in ONE_PHASE:
        return run_one_phase(fleet, lake, out, mapper, map_fn)
    ok = out.mapped(mapper, "stats", None)
    ok_buckets = sorted(ok)
    with out.phase("fleet"):
        if domain == "power":
            params, holt_params = power_fleet_fit(fleet, lake, ok_buckets, map_fn)
            shared = {"params": params, "buckets": ok_buckets}
        else:
            shared = {"p_values": calibration_p_values(lake, ok_buckets)}
    done = out.mapped(mapper, "apply", shared)
    with out.phase("attach"):
        done_buckets = sorted(b for b in done if b in ok)
        tables = POWER_RESULTS if domain == "power" else CALIBRATION_RESULTS
        merge = bool(out.failed)
        for table in (*tables, *(POWER_STATS if domain == "power" else CALIBRATION_STATS)):
            lk.remove_beyond(lake, table, buckets)
        for table in tables:
            n = attach(fleet.con, lake, table, done_buckets, buckets, BUCKET_BY[domain], merge)
            if table in ("battery_forecast", "sensor_drift"):
                out.n_rows = n
        if domain == "power":
            if len(holt_params):
                attach_rows(fleet.con, "battery_holt_params", holt_params, "device_type")
            fleet.power.replacement_plan(HORIZON_DAYS)
            fleet.power.attribution()
        else:
            fleet.calibration.stability()
            fleet.calibration.schedule()
    return out


def run_one_phase(fleet, lake: Path, out: DomainOutcome, mapper: Mapper,
                  map_fn=map) -> DomainOutcome:
    """Environment or firmware: the bucket phase, then the fleet step once (module doc)."""
    domain, buckets = out.domain, out.n_buckets
    if domain == "firmware":
        with out.phase("writer"):
            fleet.firmware.rank_and_check()
    ok_buckets = sorted(out.mapped(mapper, "stats", None))
    with out.phase("fleet"):
        tables = ENVIRONMENT_STATS if domain == "environment" else FIRMWARE_RESULTS
        for table in tables:
            lk.remove_beyond(lake, table, buckets)
        if domain == "environment":
            if not out.failed:
                out.n_rows = environment_fleet_step(fleet, lake, ok_buckets, map_fn)
        else:
            out.n_rows = attach(fleet.con, lake, "firmware_device_health", ok_buckets,
                                buckets, "device", bool(out.failed))
            record_health_source(fleet.con, lake, buckets, bool(out.failed))
    return out


def record_health_source(con, lake: Path, buckets: int, failed: bool) -> None:
    """Make the firmware views read the stored per-device health of this run (module doc):
    always when every bucket landed; with failed buckets only if they read stored rows
    already."""
    import json

    with transaction(con):
        had = con.execute("select count(*) from firmware_health_source").fetchall()[0][0]
        if failed and not had:
            return
        con.execute("delete from firmware_health_source")
        con.execute("insert into firmware_health_source values ('dask', ?, ?, ?)",
                    [str(lake), now_utc(), json.dumps({"engine": "dask", "buckets": buckets})])


def environment_fleet_step(fleet, lake: Path, ok: list[int], map_fn=map) -> int:
    """``Environment.analyze()`` once, on a scratch store holding the dimension tables,
    the monitors' hourly sums and the devices' outcomes of the buckets ``ok``; its result
    tables replace the store's. Returns the devices in ``environment_device_exposure``.
    ``map_fn`` runs the model of each outcome (on the workers, in a distributed run).

    The scratch store runs on one DuckDB thread: with several, rows arrive and sums are
    added in an order that varies between runs, and the fits amplify the last-bit
    differences (7e-5 relative in environment_effects), so a re-run would not be
    bit-identical."""
    with lk.BucketStore(threads=1) as fit:
        con = fit.con
        lk.load_whole(con, lake, (*lk.WHOLE_TABLES, *EXTRA_WHOLE["environment"]))
        files = lk.partitions(lake, "environment_monitor_hours", ok)
        # the scratch store's rollup without its primary key: the buckets' hours are
        # distinct by construction, and keeping the key's index took 1.6 of the 2.2 s of
        # loading 2.3M monitor hours at 10,000 devices, on the coordinator
        con.execute("create table _tsf_rollup as select * from readings_hourly_rollup limit 0")
        con.execute("drop table readings_hourly_rollup")
        con.execute("alter table _tsf_rollup rename to readings_hourly_rollup")
        if files:
            con.execute(
                "insert into readings_hourly_rollup (device_id, metric, hour_at, value_mean, "
                "value_min, value_max, value_last, last_observed_at, n_readings) "
                "select device_id, metric, hour_at, value_sum / n_readings, value_min, "
                "value_max, value_max, hour_at, n_readings "
                "from read_parquet(?, hive_partitioning = false)", [files])
        # the outcomes collected from the buckets, in place of the view that scans readings
        con.execute("create table _tsf_outcomes as select * from environment_device_outcomes "
                    "limit 0")
        files = lk.partitions(lake, "environment_device_outcomes", ok)
        if files:
            con.execute("insert into _tsf_outcomes by name select * from "
                        "read_parquet(?, hive_partitioning = false)", [files])
        con.execute("drop view environment_device_outcomes")
        con.execute("alter table _tsf_outcomes rename to environment_device_outcomes")
        fit.environment.analyze(map_fn=map_fn)
        results = {t: con.sql(f"select * from {q(t)}").to_arrow_table()
                   for t in ENVIRONMENT_RESULTS}
    with transaction(fleet.con):
        for table, rows in results.items():
            replace_rows(fleet.con, table, rows)
    return results["environment_device_exposure"].num_rows


def replace_rows(con, table: str, rows: pa.Table) -> None:
    """Replace every row of ``table`` with ``rows`` (inside the caller's transaction)."""
    con.register("_tsf_rows", rows)
    try:
        con.execute(f"delete from {q(table)}")
        con.execute(f"insert into {q(table)} by name select * from _tsf_rows")
    finally:
        con.unregister("_tsf_rows")


def power_fleet_fit(fleet, lake: Path, ok: list[int], map_fn=map) -> tuple[dict, pa.Table]:
    """The parameters pooled per device type, fitted once on the fleet's daily sums by
    the forecast's own code (:func:`tsfleet.power.forecast.run`), reusing the store's
    cached ones while they are current exactly as a single-node run does. Returns them
    and the rows of ``battery_holt_params`` after the fit. ``map_fn`` runs the
    statsmodels fits of the types' sample series (on the workers, in a distributed run).
    One DuckDB thread, for the reason given at :func:`environment_fleet_step`."""
    from tsfleet.power import forecast

    cached = fleet.con.sql("select * from battery_holt_params").to_arrow_table()
    with lk.BucketStore(threads=1) as fit:
        con = fit.con
        lk.load_whole(con, lake)
        load_day_stats(con, lake, ok)
        files = lk.partitions(lake, "power_last_day_readings", ok)
        if files:
            con.execute(f"insert into readings ({lk.READING_COLUMNS}) select "
                        f"{lk.READING_COLUMNS} from read_parquet(?, hive_partitioning = false)",
                        [files])
        if len(cached):
            con.register("_tsf_cached", cached)
            con.execute("insert into battery_holt_params by name select * from _tsf_cached")
            con.unregister("_tsf_cached")
        mark_refreshed(con)
        out = forecast.run(con, HORIZON_DAYS, map_fn=map_fn)
        rows = con.sql("select * from battery_holt_params").to_arrow_table()
    return out["shared"], rows


def calibration_p_values(lake: Path, ok: list[int]) -> dict[int, np.ndarray]:
    """Each bucket's tested p-values: what the fleet-wide control pools."""
    import duckdb

    out = {}
    with duckdb.connect() as con:     # one connection: opening one per bucket cost 20 ms each
        for b in ok:
            (f,) = lk.partitions(lake, "calibration_p_values", [b])
            out[b] = con.execute("select p_value from read_parquet(?)",
                                 [f]).fetchnumpy()["p_value"].astype(float)
    return out


def attach(con, lake: Path, table: str, ok: list[int], buckets: int, by: str,
           merge: bool) -> int:
    """Put the partitions of ``ok`` into ``table``, keeping their provenance columns.

    In full (``merge`` false) the table is replaced; when some buckets failed, only the
    rows of the devices of the buckets ``ok`` are, and the failed buckets' earlier
    results stay. Returns the rows attached."""
    files = lk.partitions(lake, table, ok)
    if not files:
        return 0
    key = BUCKET_SQL if by == "device" else (
        "(select " + BUCKET_SQL.replace("device_id", "coalesce(zone, '')")
        + " from devices d where d.device_id = t.device_id)")
    with transaction(con):
        if merge:
            con.execute(f"delete from {q(table)} t where {key} in (select unnest(?))",
                        [buckets, list(ok)])
        else:
            con.execute(f"delete from {q(table)}")
        con.execute(f"insert into {q(table)} by name select * exclude (bucket) from "
                    "read_parquet(?, hive_partitioning = true)", [files])
    return con.execute("select count(*) from read_parquet(?)", [files]).fetchall()[0][0]


def attach_rows(con, table: str, rows: pa.Table, key: str) -> None:
    con.register("_tsf_rows", rows)
    try:
        with transaction(con):
            con.execute(f"delete from {q(table)} where {q(key)} in "
                        f"(select {q(key)} from _tsf_rows)")
            con.execute(f"insert into {q(table)} by name select * from _tsf_rows")
    finally:
        con.unregister("_tsf_rows")
