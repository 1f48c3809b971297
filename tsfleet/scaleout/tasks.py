"""The unit of distributed work: one phase of one domain over one bucket of the lake.

:func:`analyze_bucket` is engine-agnostic: it takes paths and small parameters and
returns the paths it wrote, so any engine that can call a Python function on a host
with tsfleet installed can run it (Dask here, :mod:`tsfleet.scaleout.engine`). Each
phase runs the domain's own code on a :class:`~tsfleet.scaleout.lake.BucketStore`;
nothing of the models is re-implemented here.

The phases, and what the fleet step between them pools (see :mod:`tsfleet.scaleout.plan`):

- ``power`` ``stats``: the bucket's daily battery and temperature sums
  (:func:`tsfleet.power.daystats.refresh`) and the battery readings of each device's
  last day (a reset on it is read from them); ``apply``: the forecasts of the bucket's
  devices with the pooled per-type parameters of the fleet fit, on the fleet's daily
  sums (the zone temperatures come from monitors in any bucket).
- ``calibration`` ``stats``: drift tests of the sensors of the zones hashed to the
  bucket (a zone's peer group is whole in one task), keeping the p-values that enter
  the fleet-wide Benjamini-Hochberg control; ``apply``: the same tests, decided with
  every other bucket's p-values.
- ``environment`` ``stats`` (its only phase): the hourly count, sum, min and max of the
  bucket's environment monitors (raw and rolled-up readings together) and the outcomes
  of its devices (view ``environment_device_outcomes``); the fleet step runs the
  domain's analysis once on them.
- ``firmware`` ``stats`` (its only phase): the post-update health of the bucket's
  devices (view ``firmware_update_device_health``), which the views read once attached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from tsfleet.errors import InvalidParameter
from tsfleet.results import now_utc
from tsfleet.scaleout import lake as lk
from tsfleet.share.partition import BUCKET_SQL

#: domain -> how its buckets are formed (device hash, or the hash of the device's zone)
BUCKET_BY = {"power": "device", "calibration": "zone", "environment": "device",
             "firmware": "device"}
PHASES = ("stats", "apply")
#: The domains whose fleet step needs no second pass over the buckets: ``stats`` only.
ONE_PHASE = ("environment", "firmware")
HORIZON_DAYS = 30     # what Power.analyze forecasts

#: The power results each phase writes, per bucket.
POWER_STATS = ("battery_day_stats", "temperature_day_stats", "power_last_day_readings")
POWER_RESULTS = ("battery_forecast", "battery_patterns")
CALIBRATION_STATS = ("calibration_p_values",)
CALIBRATION_RESULTS = ("sensor_drift", "sensor_faults", "sensor_outliers",
                       "calibration_peer_exclusions")
#: What an environment bucket writes: its monitors' hourly sums and its devices' outcomes.
ENVIRONMENT_STATS = ("environment_monitor_hours", "environment_device_outcomes")
FIRMWARE_RESULTS = ("firmware_device_health",)
#: Whole tables a domain's bucket reads beyond :data:`lake.WHOLE_TABLES`.
EXTRA_WHOLE = {"environment": ("environment_monitor_types",),
               "firmware": ("update_events", "firmware_settings")}

#: The environment monitors' readings per hour, raw and rolled up, as one hourly
#: rollup row each (count, sum, min, max): all the environment reads of them
#: (tsfleet.environment.monitor_hours: means, ranges and stuck runs per hour).
MONITOR_HOURS_SQL = """
with metrics as (
    select unnest(?::varchar[]) as metric
),
monitors as (
    select device_id from environment_monitors
),
cells as (
    select device_id, metric, date_trunc('hour', observed_at) as hour_at, 1::bigint as n,
           value as s, value as lo, value as hi
    from readings
    where device_id in (select device_id from monitors)
      and metric in (select metric from metrics)
    union all
    select device_id, metric, hour_at, n_readings, value_mean * n_readings, value_min,
           value_max
    from readings_hourly_rollup
    where device_id in (select device_id from monitors)
      and metric in (select metric from metrics)
),
final as (
    select device_id, metric, hour_at, sum(n)::bigint as n_readings, sum(s) as value_sum,
           min(lo) as value_min, max(hi) as value_max
    from cells
    group by all
)
select * from final
"""

#: Battery readings of each device's last day with data: what the forecast reads raw.
LAST_DAY_SQL = """
select r.device_id, r.observed_at, r.metric, r.value, r.batch_id
from readings r
join (select device_id, max(day) as day from battery_day_stats group by device_id) l
  using (device_id)
where r.metric in ('battery_pct', 'battery_voltage_v')
  and r.observed_at >= l.day and r.observed_at < l.day + interval 1 day
"""


def analyze_bucket(lake: str | Path, bucket: int, domain: str, shared: dict | None = None,
                   *, phase: str = "apply", buckets: int | None = None,
                   threads: int | None = 1) -> list[str]:
    """Run ``phase`` of ``domain`` over ``bucket`` of ``lake``; returns the result paths.

    ``shared``: what the fleet step pooled (``apply`` only). ``buckets``: the task count
    (default: the lake's device buckets). ``threads``: DuckDB threads of the task.

    >>> # analyze_bucket("/data/lake", 3, "power", phase="stats")
    >>> # ['/data/lake/results/battery_day_stats/bucket=3/data.parquet', ...]
    """
    if domain not in BUCKET_BY:
        raise InvalidParameter(f"domain must be one of {', '.join(BUCKET_BY)}, got {domain!r}")
    if phase not in PHASES:
        raise InvalidParameter(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    root = Path(lake).resolve()
    buckets = lk.lake_buckets(root) if buckets is None else buckets
    root = lk.check_task(root, bucket, buckets)
    if phase == "apply" and shared is None:
        raise InvalidParameter(f"{domain} apply needs what the fleet step pooled (shared)")
    if phase == "apply" and domain in ONE_PHASE:
        raise InvalidParameter(f"{domain} has no apply phase: its fleet step runs once on "
                               "the collected stats")
    with lk.BucketStore(threads) as fleet:
        con = fleet.con
        lk.load_whole(con, root, (*lk.WHOLE_TABLES, *EXTRA_WHOLE.get(domain, ())))
        lk.load_readings(con, root, bucket, buckets, BUCKET_BY[domain])
        step = _STEPS[(domain, phase)]
        return step(fleet, root, bucket, buckets, shared or {})


# -- power -------------------------------------------------------------------------------
def _power_stats(fleet, root: Path, bucket: int, buckets: int, shared: dict) -> list[str]:
    from tsfleet.power import daystats

    con = fleet.con
    daystats.refresh(con)
    return [lk.write_partition(con, root, "battery_day_stats", bucket),
            lk.write_partition(con, root, "temperature_day_stats", bucket),
            lk.write_partition(con, root, "power_last_day_readings", bucket, LAST_DAY_SQL)]


def load_day_stats(con, root: Path, ok: list[int]) -> None:
    """The fleet's daily sums, from the ``stats`` partitions of the buckets ``ok``."""
    for table in ("battery_day_stats", "temperature_day_stats"):
        con.execute(f"delete from {table}")
        files = lk.partitions(root, table, ok)
        if files:
            con.execute(f"insert into {table} by name select * from "
                        "read_parquet(?, hive_partitioning = false)", [files])


def mark_refreshed(con) -> None:
    """Declare the daily tables current for the readings present, so that the
    forecast's own refresh keeps the fleet's sums loaded here."""
    from tsfleet.power.daystats import CURVES_HASH

    target = con.execute("select coalesce(max(batch_id), 0) from readings").fetchall()[0][0]
    con.execute("delete from power_refresh")
    con.execute("insert into power_refresh (batch_id, target_batch_id, refreshed_at, "
                f"curves_hash) values (?, ?, ?, ({CURVES_HASH}))", [target, target, now_utc()])


def bucket_devices(con, bucket: int, buckets: int, by: str) -> list[str]:
    where, params = lk.device_filter(bucket, buckets, by)
    return [r[0] for r in con.execute(
        f"select device_id from devices where {where} order by device_id", params).fetchall()]


def _power_apply(fleet, root: Path, bucket: int, buckets: int, shared: dict) -> list[str]:
    con = fleet.con
    load_day_stats(con, root, shared["buckets"])
    mark_refreshed(con)
    ids = bucket_devices(con, bucket, buckets, "device")
    if ids:
        fleet.power.forecast(HORIZON_DAYS, devices=ids, shared=shared["params"])
    return [lk.write_partition(con, root, t, bucket) for t in POWER_RESULTS]


# -- calibration ---------------------------------------------------------------------------
def zone_sensors(con, bucket: int, buckets: int) -> list[str]:
    zone = BUCKET_SQL.replace("device_id", "coalesce(zone, '')")
    return [r[0] for r in con.execute(
        f"select distinct device_id from calibration_sensors where {zone} = ? "
        "order by device_id", [buckets, bucket]).fetchall()]


def _calibration_stats(fleet, root: Path, bucket: int, buckets: int, shared: dict
                       ) -> list[str]:
    ids = zone_sensors(fleet.con, bucket, buckets)
    cal = fleet.calibration
    if ids:
        cal.detect(ids)
    return [_write_arrow(fleet.con, root, "calibration_p_values", bucket,
                         pa.table({"p_value": pa.array(np.asarray(cal.tested_p, float))}))]


def _calibration_apply(fleet, root: Path, bucket: int, buckets: int, shared: dict
                       ) -> list[str]:
    con = fleet.con
    ids = zone_sensors(con, bucket, buckets)
    if ids:
        other = [np.asarray(p, float) for b, p in shared["p_values"].items() if b != bucket]
        fleet.calibration.detect(ids, other_p=np.concatenate(other) if other else np.zeros(0))
    return [lk.write_partition(con, root, t, bucket) for t in CALIBRATION_RESULTS]


def _write_arrow(con, root: Path, table: str, bucket: int, data: pa.Table) -> str:
    con.register("_tsf_partition", data)
    try:
        return lk.write_partition(con, root, table, bucket, "select * from _tsf_partition")
    finally:
        con.unregister("_tsf_partition")


# -- environment ---------------------------------------------------------------------------
def _environment_stats(fleet, root: Path, bucket: int, buckets: int, shared: dict
                       ) -> list[str]:
    from tsfleet.environment import monitor_hours, queries

    con = fleet.con
    declared = [r["metric"] for r in queries.run(con, "declared_factors").to_pylist()]
    where, params = lk.device_filter(bucket, buckets, "device")
    return [
        lk.write_partition(con, root, "environment_monitor_hours", bucket, MONITOR_HOURS_SQL,
                           [[*monitor_hours.METRICS, *declared]]),
        lk.write_partition(con, root, "environment_device_outcomes", bucket,
                           f"select * from environment_device_outcomes where {where}", params)]


# -- firmware ------------------------------------------------------------------------------
def _firmware_stats(fleet, root: Path, bucket: int, buckets: int, shared: dict) -> list[str]:
    con = fleet.con
    newest_report(con, root)
    where, params = lk.device_filter(bucket, buckets, "device")
    stamp = now_utc()
    return [lk.write_partition(
        con, root, "firmware_device_health", bucket,
        f"select *, ?::timestamp as computed_at, ? as params "
        f"from firmware_update_device_health where {where}",
        [stamp, '{"engine": "dask"}', *params])]


def newest_report(con, root: Path) -> None:
    """The fleet's newest firmware report, the one row of ``firmware_reports`` the health
    reads: the firmware views judge as of the newest report, event or reading
    (``firmware_params.as_of``), and the other rows are per device, not needed here."""
    f = lk.table_file(root, "firmware_reports")
    if f.is_file():
        con.execute("insert into firmware_reports by name select * from read_parquet(?) "
                    "order by reported_at desc limit 1", [str(f)])


_STEPS = {("power", "stats"): _power_stats, ("power", "apply"): _power_apply,
          ("calibration", "stats"): _calibration_stats,
          ("calibration", "apply"): _calibration_apply,
          ("environment", "stats"): _environment_stats,
          ("firmware", "stats"): _firmware_stats}
