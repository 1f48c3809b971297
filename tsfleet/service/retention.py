"""Retention: raw readings older than ``raw_days`` are rolled up and deleted.

Hourly rollups are kept ``hourly_days`` and daily rollups for ever. A rollup
merges with an earlier one of the same hour or day (late data that arrived
after an earlier run), so running retention twice, or after a backfill,
keeps the totals right: means are weighted by their reading counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsfleet.errors import InvalidParameter
from tsfleet.results import now_utc
from tsfleet.store import transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

_MERGE = """
    on conflict do update set
        value_mean = (excluded.value_mean * excluded.n_readings
                      + {t}.value_mean * {t}.n_readings) / (excluded.n_readings + {t}.n_readings),
        value_min = least(excluded.value_min, {t}.value_min),
        value_max = greatest(excluded.value_max, {t}.value_max),
        value_last = CASE WHEN excluded.last_observed_at >= {t}.last_observed_at
                          THEN excluded.value_last ELSE {t}.value_last END,
        last_observed_at = greatest(excluded.last_observed_at, {t}.last_observed_at),
        n_readings = excluded.n_readings + {t}.n_readings
"""


@dataclass
class RetentionResult:
    cutoff_at: object
    n_raw_deleted: int
    n_hourly_rows: int
    n_daily_rows: int


def apply_retention(fleet: Fleet, raw_days: int = 90, hourly_days: int = 400) -> RetentionResult:
    """Roll up and delete raw readings observed more than ``raw_days`` before the newest one.

    >>> from tsfleet import Fleet
    >>> f = Fleet(memory=True)
    >>> _ = f.ingest("readings", [{"device_id": "d", "observed_at": f"2026-03-{d:02d}T10:00Z",
    ...                            "metric": "battery_pct", "value": 90 - d} for d in (1, 20)])
    >>> apply_retention(f, raw_days=10).n_raw_deleted
    1
    """
    if raw_days < 1 or hourly_days < raw_days:
        raise InvalidParameter(f"need 1 <= raw_days <= hourly_days, got {raw_days} and "
                               f"{hourly_days}")
    con = fleet.con
    newest = con.execute("select max(observed_at) from readings").fetchall()[0][0]
    if newest is None:
        return RetentionResult(None, 0, 0, 0)
    cutoff = con.execute("select date_trunc('day', ?::timestamp - to_days(?))",
                         [newest, raw_days]).fetchall()[0][0]
    with transaction(con):
        n_hourly = con.execute(
            "insert into readings_hourly_rollup select device_id, metric, "
            "date_trunc('hour', observed_at), avg(value), min(value), max(value), "
            "arg_max(value, observed_at), max(observed_at), count(*) from readings "
            "where observed_at < ? group by all" + _MERGE.format(t="readings_hourly_rollup"),
            [cutoff]).fetchall()[0][0]
        n_daily = con.execute(
            "insert into readings_daily_rollup select device_id, metric, "
            "cast(observed_at as date), avg(value), min(value), max(value), "
            "arg_max(value, observed_at), max(observed_at), count(*) from readings "
            "where observed_at < ? group by all" + _MERGE.format(t="readings_daily_rollup"),
            [cutoff]).fetchall()[0][0]
        n_deleted = con.execute("delete from readings where observed_at < ?",
                                [cutoff]).fetchall()[0][0]
        hourly_cutoff = con.execute("select ?::timestamp - to_days(?)",
                                    [cutoff, hourly_days - raw_days]).fetchall()[0][0]
        con.execute("delete from readings_hourly_rollup where hour_at < ?", [hourly_cutoff])
        con.execute("insert into retention_runs values (?, ?, ?, ?, ?, ?, ?)",
                    [now_utc(), raw_days, hourly_days, cutoff, n_deleted, n_hourly, n_daily])
    return RetentionResult(cutoff, n_deleted, n_hourly, n_daily)
