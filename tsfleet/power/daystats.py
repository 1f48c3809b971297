"""Daily battery and temperature aggregates, maintained incrementally.

The forecast needs one level per device and day, not every reading. Reading
the daily view over all raw readings was most of a fleet forecast's time, so
the aggregates live in two tables of *sums* (``battery_day_stats``,
``temperature_day_stats``) that :func:`refresh` keeps current: it folds in only
the readings of ingest batches after the watermark (``power_refresh``; batch ids
grow with insertion, so the scan skips the old row groups; the views read the
watermark from the session variables ``power_mark`` and ``power_target``) and adds their sums
to the (device, day) rows they touch. Without a watermark (a new store, or
``full=True``) it rebuilds everything from the whole history: the raw readings
and, for hours whose raw readings aged out, the hourly rollup (views
``power_refresh_rows``, ``battery_day_pending``, ``temperature_day_pending``).
"""

from __future__ import annotations

from tsfleet.results import now_utc
from tsfleet.store import transaction

#: Each daily table, the view of the sums to fold in, and its summed columns (named, so
#: that rows are matched by column name: a store repaired by migration 920 orders the
#: columns differently).
TABLES = (
    ("battery_day_stats", "battery_day_pending",
     "sum(n_readings) as n_readings, sum(level_sum) as level_sum, sum(epoch_sum) as epoch_sum, "
     "max(last_observed_at) as last_observed_at, sum(am_n) as am_n, "
     "sum(am_level_sum) as am_level_sum, sum(pm_n) as pm_n, sum(pm_level_sum) as pm_level_sum"),
    ("temperature_day_stats", "temperature_day_pending",
     "sum(n_readings) as n_readings, sum(temperature_sum) as temperature_sum"),
)


#: A hash of what converts a voltage to a level for the devices already aggregated: the
#: cell curves, the chemistries' default cells and each such device's curve and cells.
CURVES_HASH = """
select hash((select string_agg(hash(curve_id, temperature_c, level_pct, voltage_v, cells)::varchar,
                               ',' order by curve_id, temperature_c, level_pct)
             from battery_curves),
            (select string_agg(hash(chemistry, cells)::varchar, ',' order by chemistry)
             from battery_chemistries),
            (select bit_xor(hash(device_id, battery_chemistry, battery_curve, battery_cells))
             from devices where device_id in (select device_id from battery_day_stats)))
"""


def refresh(con, full: bool = False) -> int:
    """Fold readings of batches after the watermark into the daily tables.

    A changed conversion (a curve ingested or replaced, a device's curve or cells
    changed) rebuilds everything: the stored sums were read through the old one.
    Returns the number of (device, day) rows touched (0: already current).
    """
    target = con.execute("select coalesce(max(batch_id), 0) from readings").fetchall()[0][0]
    row = con.execute("select max(batch_id), count(*), max(curves_hash) "
                      "from power_refresh").fetchall()[0]
    stale = row[1] and row[2] != con.execute(CURVES_HASH).fetchall()[0][0]
    mark = None if full or not row[1] or stale else row[0]
    if mark is not None and mark >= target:
        return 0
    n = 0
    with transaction(con):
        con.execute("delete from power_refresh")
        con.execute("insert into power_refresh (batch_id, target_batch_id, refreshed_at) "
                    "values (?, ?, ?)", [mark, target, now_utc()])
        con.execute("set variable power_mark = ?", [-1 if mark is None else int(mark)])
        con.execute("set variable power_target = ?", [int(target)])
        con.execute("set variable power_rollup_until = (select max(last_observed_at) "
                    "from readings_hourly_rollup)")
        for table, pending, sums in TABLES:
            if mark is None:
                con.execute(f"delete from {table}")
                con.execute(f"insert into {table} by name select * from {pending}")
                n += con.execute(f"select count(*) from {table}").fetchall()[0][0]
                continue
            con.execute(f"create or replace temp table power_new as select * from {pending}")
            n += con.execute("select count(*) from power_new").fetchall()[0][0]
            con.execute(f"create or replace temp table power_merged as "
                        f"select device_id, day, {sums} from ("
                        f"select t.* from {table} t semi join power_new n using (device_id, day) "
                        f"union all by name select * from power_new) group by device_id, day")
            con.execute(f"delete from {table} t using power_new n "
                        "where t.device_id = n.device_id and t.day = n.day")
            con.execute(f"insert into {table} by name select * from power_merged")
            con.execute("drop table power_new")
            con.execute("drop table power_merged")
        con.execute("update power_refresh set batch_id = ?, refreshed_at = ?, curves_hash = "
                    f"({CURVES_HASH})", [target, now_utc()])
    return int(n)
