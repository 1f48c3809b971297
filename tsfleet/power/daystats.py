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


def refresh(con, full: bool = False) -> int:
    """Fold readings of batches after the watermark into the daily tables.

    Returns the number of (device, day) rows touched (0: already current).
    """
    target = con.execute("select coalesce(max(batch_id), 0) from readings").fetchone()[0]
    row = con.execute("select max(batch_id), count(*) from power_refresh").fetchone()
    mark = None if full or not row[1] else row[0]
    if mark is not None and mark >= target:
        return 0
    n = 0
    with transaction(con):
        con.execute("delete from power_refresh")
        con.execute("insert into power_refresh values (?, ?, ?)", [mark, target, now_utc()])
        con.execute("set variable power_mark = ?", [-1 if mark is None else int(mark)])
        con.execute("set variable power_target = ?", [int(target)])
        con.execute("set variable power_rollup_until = (select max(last_observed_at) "
                    "from readings_hourly_rollup)")
        for table, pending, sums in TABLES:
            if mark is None:
                con.execute(f"delete from {table}")
                con.execute(f"insert into {table} by name select * from {pending}")
                n += con.execute(f"select count(*) from {table}").fetchone()[0]
                continue
            con.execute(f"create or replace temp table power_new as select * from {pending}")
            n += con.execute("select count(*) from power_new").fetchone()[0]
            con.execute(f"create or replace temp table power_merged as "
                        f"select device_id, day, {sums} from ("
                        f"select t.* from {table} t semi join power_new n using (device_id, day) "
                        f"union all by name select * from power_new) group by device_id, day")
            con.execute(f"delete from {table} t using power_new n "
                        "where t.device_id = n.device_id and t.day = n.day")
            con.execute(f"insert into {table} by name select * from power_merged")
            con.execute("drop table power_new")
            con.execute("drop table power_merged")
        con.execute("update power_refresh set batch_id = ?, refreshed_at = ?", [target, now_utc()])
    return int(n)
