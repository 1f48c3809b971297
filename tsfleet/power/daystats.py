"""Daily battery and temperature aggregates, maintained incrementally.

The forecast needs one level per device and day, not every reading. Reading
the daily view over all raw readings was most of a fleet forecast's time, so
the aggregates live in two tables (``battery_day_stats``,
``temperature_day_stats``) that :func:`refresh` keeps current: it recomputes
only the (device, day) keys with readings in ingest batches after the
watermark (``power_refresh``), from the raw readings and, for hours whose raw
readings aged out, the hourly rollup (views ``power_refresh_keys``,
``power_refresh_source``, ``battery_day_pending``, ``temperature_day_pending``).
Without a watermark (a new store, or ``full=True``) it rebuilds everything
from the whole history, raw and rolled up.
"""

from __future__ import annotations

from tsfleet.results import now_utc
from tsfleet.store import transaction


def refresh(con, full: bool = False) -> int:
    """Fold readings of batches after the watermark into the daily tables.

    Returns the number of (device, day) keys recomputed (0: already current).
    """
    target = con.execute("select coalesce(max(batch_id), 0) from readings").fetchone()[0]
    row = con.execute("select max(batch_id), count(*) from power_refresh").fetchone()
    mark = None if full or not row[1] else row[0]
    if mark is not None and mark >= target:
        return 0
    with transaction(con):
        con.execute("delete from power_refresh")
        con.execute("insert into power_refresh values (?, ?, ?)", [mark, target, now_utc()])
        con.execute("create or replace temp table power_keys as select * from power_refresh_keys")
        for table, pending in (("battery_day_stats", "battery_day_pending"),
                               ("temperature_day_stats", "temperature_day_pending")):
            if mark is None:
                con.execute(f"delete from {table}")
            else:
                con.execute(f"delete from {table} where (device_id, day) in "
                            "(select (device_id, day) from power_keys)")
            con.execute(f"insert into {table} select * from {pending}")
        con.execute("update power_refresh set batch_id = ?, refreshed_at = ?", [target, now_utc()])
        n = (con.execute("select count(*) from power_keys").fetchone()[0] if mark is not None
             else con.execute("select count(*) from battery_day_stats").fetchone()[0])
        con.execute("drop table power_keys")
    return int(n)
