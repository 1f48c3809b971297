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


def data_window(con: duckdb.DuckDBPyConnection,
                table: str = "environment_monitor_readings") -> Window | None:
    """Hours spanned by environment-monitor hours (``table``: the view, or its
    materialized copy), or None without any."""
    lo, hi = con.execute(
        f"select min(hour_at), max(hour_at) + interval 1 hour from {quote_ident(table)}"
    ).fetchall()[0]
    return None if lo is None else Window(lo, hi)


def build(con: duckdb.DuckDBPyConnection, *, max_gap_hours: int, dead_after_hours: int,
          params: dict) -> Window | None:
    """Write environment_zone_hourly, environment_gaps and environment_monitor_faults;
    return the analysis window (None without any monitor data)."""
    temps = ("_env_monitor_readings", "_env_observed", "_env_grid", "_env_zone")
    try:
        # One pass over the monitors' hourly history; everything below reads this copy.
        con.execute("create or replace temp table _env_monitor_readings as "
                    "select device_id, zone, metric, hour_at, value, n_readings, "
                    "last_observed_at, is_out_of_range, is_stuck, is_valid "
                    "from environment_monitor_readings")
        window = data_window(con, "_env_monitor_readings")
        if window is None:
            for table in ("environment_zone_hourly", "environment_gaps"):
                con.execute(f"delete from {quote_ident(table)}")
            end = con.execute("select max(observed_at) from device_latest").fetchall()[0][0]
        else:
            end = window.end
            p = {"start": window.start, "end": window.end}
            queries.temp_table(con, "_env_observed", "zone_observed", p)
            queries.temp_table(con, "_env_grid", "zone_grid", p)
            queries.temp_table(con, "_env_zone", "zone_hourly",
                               {"max_gap_hours": max_gap_hours})
            write_result(con, "environment_zone_hourly", queries.run(con, "zone_wide"),
                         params=params)
            write_result(con, "environment_gaps", queries.run(con, "gaps", p), params=params)
        faults = queries.run(con, "monitor_faults", {"end": end or datetime(1970, 1, 1),
                                                     "dead_after_hours": dead_after_hours})
        write_result(con, "environment_monitor_faults", faults, params=params)
        return window
    finally:
        for t in temps:
            con.execute(f"drop table if exists {quote_ident(t)}")
