"""``tsfleet power``: forecast, plan, report, backtest.

``power plan`` is the power view of the one maintenance plan (``tsfleet workorders``).
Forecast rows are made self-consistent before they are shown (:func:`consistent`).
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import datetime, timedelta

from tsfleet.cliutil import (
    add_as_of,
    add_format,
    add_horizon,
    add_window,
    check_horizon,
    json_default,
    open_fleet,
    open_plan,
    plain,
    plural,
    print_plan,
    print_rows,
    print_sentences,
    within_horizon,
)
from tsfleet.errors import check_count
from tsfleet.rows import Rows, columns_of, mapped

#: Columns of the forecast table on a terminal (every column with --wide, csv or json).
FORECAST_TABLE = ("device_id", "level_now_pct", "rate_pct_per_day", "days_to_critical",
                  "critical_at", "days_to_empty", "empty_at", "chosen_model", "pattern")
PREDICTED = ("critical_at", "empty_at", "critical_lo_at", "critical_hi_at", "empty_lo_at",
             "empty_hi_at")
PLAN_TABLE = ("workorder_id", "site", "visit_due_at", "subject_id", "finding", "level_pct",
              "due_at", "is_overdue")


def register(sub) -> None:
    p = sub.add_parser("power", help="battery forecasts, replacement plan, drain report")
    ps = p.add_subparsers(dest="power_command", required=True, metavar="ACTION")
    f = ps.add_parser("forecast", help="forecast every battery device: the stored forecast "
                                       "while no data arrived since (read-only); else "
                                       "recomputed and stored (needs write access)")
    f.add_argument("--horizon-days", type=int, default=30,
                   help="days ahead to forecast, 1..365 (default 30)")
    f.add_argument("--soonest", type=int, default=None, metavar="N",
                   help="only the N devices that reach their critical level soonest, soonest "
                        "first (default: every device, by id)")
    pl = ps.add_parser("plan", help="battery replacements: the power items of the one "
                                    "maintenance plan (tsfleet workorders), replanned and "
                                    "stored; with --as-of a preview that stores nothing")
    add_horizon(pl)
    add_window(pl, "--batch-days")     # its name before the plan was one (tsfleet 0.1)
    add_as_of(pl)
    ps.add_parser("report", help="discharge by dimension and drain attribution: the stored "
                                 "attribution while no data arrived since (read-only); else "
                                 "recomputed and stored (needs write access)")
    b = ps.add_parser("backtest", help="score the forecast on the last horizon of history: the "
                                       "stored scores of that horizon while no data arrived "
                                       "since (read-only); else rescored and stored (needs "
                                       "write access)")
    b.add_argument("--horizon-days", type=int, default=30,
                   help="days held out at the end of each history (default 30)")
    for s in ps.choices.values():
        add_format(s)
    p.set_defaults(func=run)


def consistent(rows: list[dict]) -> list[dict]:
    """Forecast rows that never contradict themselves:

    - a level at or below critical is critical now (``critical_at`` = ``as_of``, 0 days);
      a level at or below 0 is empty now;
    - ``days_to_*`` are the days from ``as_of`` to the matching date, never negative;
    - a date's interval contains it (``*_lo_at <= *_at <= *_hi_at``), and a battery is
      critical no later than it is empty.
    """
    return mapped(rows, _consistent)


def _consistent(r: dict) -> dict:
    """One row of :func:`consistent`."""
    r = dict(r)
    now = r.get("as_of")
    level = r.get("level_now_pct")
    known = isinstance(level, (int, float)) and not math.isnan(level)
    if known and isinstance(now, datetime):
        crit = r.get("critical_pct")
        if crit is not None and not math.isnan(crit) and level <= crit:
            r["critical_at"] = r["critical_lo_at"] = now
            r["critical_hi_at"] = max(_t(r.get("critical_hi_at")) or now, now)
        if level <= 0:
            r["empty_at"] = r["empty_lo_at"] = now
            r["empty_hi_at"] = max(_t(r.get("empty_hi_at")) or now, now)
    for what in ("critical", "empty"):
        at = _t(r.get(f"{what}_at"))
        if isinstance(now, datetime) and at is not None:
            at = max(at, now)
            r[f"{what}_at"] = at
            lo, hi = _t(r.get(f"{what}_lo_at")), _t(r.get(f"{what}_hi_at"))
            r[f"{what}_lo_at"] = min(max(lo or at, now), at)
            r[f"{what}_hi_at"] = max(hi or at, at)
            r[f"days_to_{what}"] = (at - now) / timedelta(days=1)
        elif at is None:
            r[f"days_to_{what}"] = None
    crit, empty = _t(r.get("critical_at")), _t(r.get("empty_at"))
    if crit is not None and empty is not None and crit > empty:
        r["critical_at"] = empty
        if isinstance(now, datetime):
            r["days_to_critical"] = (empty - now) / timedelta(days=1)
        r["critical_lo_at"] = min(_t(r.get("critical_lo_at")) or empty, empty)
        r["critical_hi_at"] = max(_t(r.get("critical_hi_at")) or empty, empty)
    return r


def _t(v) -> datetime | None:
    """A time or None (NaT and NaN are None)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "to_pydatetime"):
        return None if v != v else v.to_pydatetime()  # noqa: PLR0124 - NaT
    return v


def forecast_rows(fleet, horizon_days: int, frame=None) -> list[dict]:
    """The forecast of every battery device (``frame``, else computed now and stored), as
    consistent plain records."""
    frame = fleet.power.forecast(horizon_days) if frame is None else frame
    rows = Rows(frame.astype(object).where(frame.notna(), None).to_dict("records"),
                [str(c) for c in frame.columns])
    return consistent(mapped(rows, lambda r: {k: _t(v) if k.endswith("_at") or k == "as_of"
                                              else v for k, v in r.items()}))


def soonest(rows: list[dict], n: int) -> list[dict]:
    """The ``n`` (a whole number from 1) rows that reach their critical level
    soonest, then their empty level (devices that reach neither within the forecast last,
    by id)."""
    far = float("inf")

    def key(r: dict) -> tuple:
        return tuple(far if r.get(c) is None else r[c]
                     for c in ("days_to_critical", "days_to_empty")) + (r["device_id"],)

    return Rows(sorted(rows, key=key)[:n], columns_of(rows))


def _table(rows: list[dict], args: argparse.Namespace, cols: tuple[str, ...]) -> list[dict]:
    """On a terminal: ``cols``, with predicted times to the day (what a forecast knows)."""
    if args.format != "table" or args.wide:
        return rows
    return [{c: r[c].date() if c in PREDICTED and isinstance(r.get(c), datetime) else r.get(c)
             for c in cols} for r in rows]


#: Per listing: the result table it prints and the parameter its rows must have been
#: computed with (None: any).
STORED = {"forecast": ("battery_forecast", "horizon_days"),
          "backtest": ("battery_backtest", "horizon_days"),
          "report": ("drain_attribution", None)}


def _stored(fleet, table: str, param: str | None = None, value=None) -> bool:
    """Whether ``table`` holds a result (made with ``param`` = ``value``) computed after
    the newest ingest batch: what a recomputation would print."""
    from tsfleet.store import quote_ident as q

    return bool(fleet.query(
        f"select count(*) > 0 and max(computed_at) >= coalesce((select cast(max(finished_at) "
        "as timestamp) from ingest_batches), '-infinity'::timestamp) and (?::varchar is null "
        "or bool_and(json_extract(params, '$.' || ?)::varchar = ?::varchar)) as ok "
        f"from {q(table)}", [param, param, None if value is None else str(value)])[0]["ok"])


def run(args: argparse.Namespace) -> int:
    """The listings print the stored result while it is current (read-only); otherwise
    they compute it and store it (needs write access)."""
    cmd = args.power_command
    if cmd == "plan":
        return cmd_plan(args)
    if cmd == "forecast" and args.soonest is not None:
        check_count("--soonest", args.soonest)   # before the forecast is written
    table, param = STORED[cmd]
    value = getattr(args, param) if param else None
    with open_fleet(args, read_only=True) as fleet:
        if _stored(fleet, table, param, value):
            return _show(fleet, args, stored=True)
    with open_fleet(args) as fleet:
        return _show(fleet, args, stored=False)


def _show(fleet, args: argparse.Namespace, stored: bool) -> int:
    cmd = args.power_command
    if cmd == "report":
        return cmd_report(fleet, args, stored)
    if cmd == "forecast":
        if stored:
            from tsfleet.power.api import FORECAST_COLUMNS

            rows = forecast_rows(fleet, args.horizon_days, fleet.frame(
                f"select {', '.join(FORECAST_COLUMNS)} from battery_forecast order by device_id"))
        else:
            rows = forecast_rows(fleet, args.horizon_days)
        if args.soonest is not None:
            rows = soonest(rows, args.soonest)
        rows = _table(rows, args, FORECAST_TABLE)
    else:
        from tsfleet.power.api import BACKTEST_SCORES, summarize_backtest

        if stored:
            res = summarize_backtest(fleet.frame(
                "select * exclude (computed_at, params) from battery_backtest"))
        else:
            res = fleet.power.backtest(args.horizon_days)
        rows = Rows(({"method": k, **v} for k, v in res.items() if isinstance(v, dict)),
                    ("method", *BACKTEST_SCORES))
        if args.format == "table":      # what the figures are of (empty when none scored)
            print_sentences([backtest_line(res, args.horizon_days)])
    print_rows(rows, args)
    return 0


def backtest_line(res: dict, horizon_days: int) -> str:
    """The line above the backtest's table: how many devices its figures are of.

    >>> backtest_line({"n_devices": 3, "n_scored": 1}, 30)
    'backtest on the last 30 days of each history: 1 of 3 devices scored'
    """
    n, scored = res.get("n_devices", 0), res.get("n_scored", 0)
    return (f"backtest on the last {plural(horizon_days, 'day')} of each history: "
            f"{scored:,} of {plural(n, 'device')} scored"
            + (" (no battery fell over them without a reset)" if not scored else ""))


def cmd_report(fleet, args: argparse.Namespace, stored: bool = False) -> int:
    """Two tables: discharge by dimension, then drain attribution (one JSON object with
    both arrays; two CSV blocks separated by a blank line)."""
    attribution = (fleet.query("select * exclude (computed_at, params) from drain_attribution")
                   if stored else fleet.power.attribution())
    parts = {"discharge": fleet.query("select * from battery_discharge_summary"),
             "attribution": attribution}
    if args.format == "json":
        print(json.dumps({k: [{c: plain(v) for c, v in r.items()} for r in rows]
                          for k, rows in parts.items()}, default=json_default, indent=2))
        return 0
    for i, (name, rows) in enumerate(parts.items()):
        if args.format == "table":
            print(("\n" if i else "") + f"{name}:")
        elif i:
            print()
        print_rows(rows, args)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    check_horizon(args)

    def lacks(f) -> bool:   # the plan's battery items come from the stored forecast
        return not f.query("select count(*) as n from battery_forecast")[0]["n"]

    with open_plan(args, lacks=lacks, fill=lambda f: f.power.forecast(30)) as (fleet, when):
        rows = within_horizon(fleet.alerts.work_orders(domain="power"), args, when.at)
    rows = mapped(rows, lambda r: {**{k: v for k, v in r.items() if k != "value"},
                                   "level_pct": r["value"]})
    print_plan(_table(rows, args, PLAN_TABLE), args, when, "battery replacements")
    return 0
