"""Retention: raw readings older than ``raw_days`` are rolled up and deleted.

Hourly rollups are kept ``hourly_days`` and daily rollups for ever. A rollup
merges with an earlier one of the same hour or day (late data that arrived
after an earlier run), so running retention twice, or after a backfill,
keeps the totals right: means are weighted by their reading counts.

With ``quarantine_days``, what ingest set aside is deleted once older than that
(by the clock: when it was received): quarantined rows and unmapped fields, with
their texts in ``text_pieces``. Without it they are kept, except that ``serve`` keeps
only the newest quarantined live rows (``--quarantine-keep``): a sender that keeps sending
bad payloads grows the store by each distinct one (docs/live.md).
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
    #: with ``quarantine_days``: rows received before this were deleted (else None)
    quarantine_cutoff_at: object = None
    n_quarantine_deleted: int = 0
    n_unmapped_deleted: int = 0     #: unmapped fields (rows of ``unmapped_items``)


def apply_retention(fleet: Fleet, raw_days: int = 90, hourly_days: int = 400,
                    quarantine_days: int | None = None) -> RetentionResult:
    """Roll up and delete raw readings observed more than ``raw_days`` before the newest one;
    with ``quarantine_days``, also delete the quarantined rows and unmapped fields received
    more than that many days ago, and their texts.

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
    if quarantine_days is not None and quarantine_days < 1:
        raise InvalidParameter(f"need quarantine_days >= 1, got {quarantine_days}")
    con = fleet.con
    newest = con.execute("select max(observed_at) from readings").fetchall()[0][0]
    if newest is None and quarantine_days is None:
        return RetentionResult(None, 0, 0, 0)
    with transaction(con):
        res = (_roll_up(con, newest, raw_days, hourly_days) if newest is not None
               else RetentionResult(None, 0, 0, 0))
        if quarantine_days is not None:
            _set_aside(con, quarantine_days, res)
        con.execute("insert into retention_runs (ran_at, raw_days, hourly_days, cutoff_at, "
                    "n_raw_deleted, n_hourly_rows, n_daily_rows, quarantine_days, "
                    "quarantine_cutoff_at, n_quarantine_deleted, n_unmapped_deleted) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [now_utc(), raw_days, hourly_days, res.cutoff_at, res.n_raw_deleted,
                     res.n_hourly_rows, res.n_daily_rows, quarantine_days,
                     res.quarantine_cutoff_at,
                     *((res.n_quarantine_deleted, res.n_unmapped_deleted)
                       if quarantine_days is not None else (None, None))])
    return res


def _set_aside(con, days: int, res: RetentionResult) -> None:
    """Delete the quarantined rows and unmapped fields received more than ``days`` days
    ago, the unmapped payloads none of whose fields is left, and the texts of all of them
    (in the caller's transaction); the counts go into ``res``."""
    from tsfleet.live.texts import ORPHAN_PAYLOADS, delete_with_texts

    cutoff = con.execute("select now() - to_days(?)", [days]).fetchall()[0][0]
    res.quarantine_cutoff_at = cutoff
    res.n_quarantine_deleted = delete_with_texts(con, "quarantine_rows",
                                                 "quarantined_at < ?", [cutoff])
    res.n_unmapped_deleted = delete_with_texts(con, "unmapped_item_rows", "received_at < ?",
                                               [cutoff])
    delete_with_texts(con, "unmapped_payload_rows", ORPHAN_PAYLOADS)


def _roll_up(con, newest, raw_days: int, hourly_days: int) -> RetentionResult:
    """The raw readings part of :func:`apply_retention` (in the caller's transaction)."""
    cutoff = con.execute("select date_trunc('day', ?::timestamp - to_days(?))",
                         [newest, raw_days]).fetchall()[0][0]
    n_hourly, n_daily = (con.execute(
        f"insert into {table} select device_id, metric, {bucket}, avg(value), min(value), "
        "max(value), arg_max(value, observed_at), max(observed_at), count(*) from readings "
        "where observed_at < ? group by all" + _MERGE.format(t=table), [cutoff]).fetchall()[0][0]
        for table, bucket in (("readings_hourly_rollup", "date_trunc('hour', observed_at)"),
                              ("readings_daily_rollup", "cast(observed_at as date)")))
    n_deleted = con.execute("delete from readings where observed_at < ?",
                            [cutoff]).fetchall()[0][0]
    hourly_cutoff = con.execute("select ?::timestamp - to_days(?)",
                                [cutoff, hourly_days - raw_days]).fetchall()[0][0]
    con.execute("delete from readings_hourly_rollup where hour_at < ?", [hourly_cutoff])
    return RetentionResult(cutoff, n_deleted, n_hourly, n_daily)
