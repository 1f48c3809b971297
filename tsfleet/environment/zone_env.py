"""The zone environment per hour: valid monitor readings, bounded interpolation,
gaps and monitor faults, written as result tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from tsfleet.environment import queries
from tsfleet.results import write_result
from tsfleet.store import quote_ident


@dataclass(frozen=True)
class Window:
    """The analysis window [start, end), whole UTC hours."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


def data_window(con: duckdb.DuckDBPyConnection) -> Window | None:
    """Hours spanned by environment-monitor readings, or None without any."""
    lo, hi = con.execute(
        "select date_trunc('hour', min(r.observed_at)), "
        "date_trunc('hour', max(r.observed_at)) + interval 1 hour "
        "from readings r join devices d using (device_id) "
        "where d.device_type = 'env_monitor' "
        "and r.metric in ('temperature_c', 'humidity_pct', 'vibration_g')").fetchall()[0]
    return None if lo is None else Window(lo, hi)


def build(con: duckdb.DuckDBPyConnection, window: Window | None, *, max_gap_hours: int,
          dead_after_hours: int, params: dict) -> None:
    """Write environment_zone_hourly, environment_gaps and environment_monitor_faults."""
    temps = ("_env_monitor_readings", "_env_observed", "_env_grid", "_env_zone_long")
    try:
        # The flagged monitor readings are read twice: evaluate the view once.
        con.execute("create or replace temp table _env_monitor_readings as "
                    "select * from environment_monitor_readings")
        if window is None:
            for table in ("environment_zone_hourly", "environment_gaps"):
                con.execute(f"delete from {quote_ident(table)}")
            end = con.execute("select max(observed_at) from readings").fetchall()[0][0]
        else:
            end = window.end
            p = {"start": window.start, "end": window.end}
            queries.temp_table(con, "_env_observed", "zone_observed", p)
            queries.temp_table(con, "_env_grid", "zone_grid", p)
            queries.temp_table(con, "_env_zone_long", "zone_hourly",
                               {"max_gap_hours": max_gap_hours})
            write_result(con, "environment_zone_hourly", queries.run(con, "zone_wide"),
                         params=params)
            write_result(con, "environment_gaps", queries.run(con, "gaps", p), params=params)
        faults = queries.run(con, "monitor_faults", {"end": end or datetime(1970, 1, 1),
                                                     "dead_after_hours": dead_after_hours})
        write_result(con, "environment_monitor_faults", faults, params=params)
    finally:
        for t in temps:
            con.execute(f"drop table if exists {quote_ident(t)}")
