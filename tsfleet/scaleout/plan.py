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

``mapper(domain, phase, shared)`` runs a phase over every bucket on some engine and
returns ``{bucket: paths}`` for the buckets that succeeded and ``{bucket: error}``
for those that failed (:mod:`tsfleet.scaleout.engine`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from tsfleet.scaleout import lake as lk
from tsfleet.scaleout.tasks import (
    BUCKET_BY,
    CALIBRATION_RESULTS,
    CALIBRATION_STATS,
    HORIZON_DAYS,
    POWER_RESULTS,
    POWER_STATS,
    load_day_stats,
    mark_refreshed,
)
from tsfleet.share.partition import BUCKET_SQL
from tsfleet.store import quote_ident as q
from tsfleet.store import transaction

#: The domains that run distributed, in the registry's run order.
DISTRIBUTED = ("power", "calibration")

Mapper = Callable[[str, str, "dict | None"], "tuple[dict[int, list[str]], dict[int, str]]"]


@dataclass
class DomainOutcome:
    """One distributed domain run."""

    domain: str
    n_buckets: int
    failed: dict[int, str] = field(default_factory=dict)   #: bucket -> one-line error
    phase_s: dict[str, float] = field(default_factory=dict)   #: stats, fleet, apply, attach
    n_rows: int = 0           #: per-device rows attached
    result: object = None     #: the RunResult recorded in analysis_runs


def run_domain(fleet, lake: Path, domain: str, buckets: int, mapper: Mapper) -> DomainOutcome:
    """Both phases of ``domain`` over ``buckets``, the fleet steps, the attach."""
    out = DomainOutcome(domain, buckets)
    t = time.perf_counter()
    ok, failed = mapper(domain, "stats", None)
    out.failed.update(failed)
    out.phase_s["stats"] = time.perf_counter() - t
    t = time.perf_counter()
    ok_buckets = sorted(ok)
    if domain == "power":
        params, holt_params = power_fleet_fit(fleet, lake, ok_buckets)
        shared = {"params": params, "buckets": ok_buckets}
    else:
        shared = {"p_values": calibration_p_values(lake, ok_buckets)}
    out.phase_s["fleet"] = time.perf_counter() - t
    t = time.perf_counter()
    done, failed = mapper(domain, "apply", shared)
    out.failed.update(failed)
    out.phase_s["apply"] = time.perf_counter() - t
    t = time.perf_counter()
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
    out.phase_s["attach"] = time.perf_counter() - t
    return out


def power_fleet_fit(fleet, lake: Path, ok: list[int]) -> tuple[dict, pa.Table]:
    """The parameters pooled per device type, fitted once on the fleet's daily sums by
    the forecast's own code (:func:`tsfleet.power.forecast.run`), reusing the store's
    cached ones while they are current exactly as a single-node run does. Returns them
    and the rows of ``battery_holt_params`` after the fit."""
    from tsfleet.power import forecast

    cached = fleet.con.sql("select * from battery_holt_params").to_arrow_table()
    with lk.BucketStore(threads=None) as fit:
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
        out = forecast.run(con, HORIZON_DAYS)
        rows = con.sql("select * from battery_holt_params").to_arrow_table()
    return out["shared"], rows


def calibration_p_values(lake: Path, ok: list[int]) -> dict[int, np.ndarray]:
    """Each bucket's tested p-values: what the fleet-wide control pools."""
    import duckdb

    out = {}
    for b in ok:
        (f,) = lk.partitions(lake, "calibration_p_values", [b])
        with duckdb.connect() as con:
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
