"""One clock for every plan: the instant a schedule, a plan or a work order is "as of".

A live store (its newest reading is recent) is planned as of now; a historical store
(an export, a demo, a store whose feed stopped) as of the end of its data, so that a
plan never says that everything was due months ago. "Recent" is learned from the
fleet: within ``k`` reporting intervals (the median of ``devices.reporting_interval_s``)
of now, the same test the offline check makes.

>>> from tsfleet import Fleet
>>> as_of(Fleet(memory=True).con, now=datetime(2026, 7, 1)).reason
'now; empty store'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from tsfleet.results import now_utc

#: Missed reporting intervals after which a store's feed counts as stopped (as the
#: offline check's default k).
LIVE_K = 3.0
#: Reporting interval assumed when the registry gives none, seconds.
DEFAULT_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class AsOf:
    """The planning instant and why it is that instant."""

    at: datetime
    reason: str
    #: A plan as of this instant is shown and stored nowhere (an ``--as-of`` other than
    #: the store's own instant).
    preview: bool = False

    def __str__(self) -> str:
        return f"as of {self.at:%Y-%m-%d %H:%M} UTC ({self.reason})"


def data_end(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest reading's time, or None for a store without readings."""
    return con.execute("select max(observed_at) from readings").fetchall()[0][0]


def as_of(con: duckdb.DuckDBPyConnection, at: datetime | None = None,
          now: datetime | None = None) -> AsOf:
    """``at`` if given, else now for a live store and the end of the data otherwise."""
    if at is not None:
        return AsOf(at, "given")
    now = now or now_utc()
    end = data_end(con)
    if end is None:
        return AsOf(now, "now; empty store")
    interval = con.execute("select median(reporting_interval_s) from devices "
                           "where reporting_interval_s > 0").fetchall()[0][0]
    slack = timedelta(seconds=LIVE_K * float(interval or DEFAULT_INTERVAL_S))
    if end >= now - slack:
        return AsOf(now, "now; live store")
    return AsOf(end, "end of the data; historical store")
