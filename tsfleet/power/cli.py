"""``tsfleet power``: forecast, plan, report, backtest."""

from __future__ import annotations

import argparse

from tsfleet.cli import format_rows, open_fleet


def register(sub) -> None:
    p = sub.add_parser("power", help="battery forecasts, replacement plan, drain report")
    ps = p.add_subparsers(dest="power_command", required=True, metavar="ACTION")
    f = ps.add_parser("forecast", help="forecast every battery device")
    f.add_argument("--horizon-days", type=int, default=30)
    pl = ps.add_parser("plan", help="replacement plan batched by site visit")
    pl.add_argument("--horizon-days", type=int, default=30)
    pl.add_argument("--batch-days", type=float, default=7.0)
    ps.add_parser("report", help="discharge by dimension and drain attribution")
    b = ps.add_parser("backtest", help="score the forecast on the last horizon of history")
    b.add_argument("--horizon-days", type=int, default=30)
    for s in (f, pl, ps.choices["report"], b):
        s.add_argument("--format", choices=("table", "csv", "json"), default="table")
        s.add_argument("--db", dest="sub_db", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        power = fleet.power
        if args.power_command == "forecast":
            rows = power.forecast(args.horizon_days).to_dict("records")
        elif args.power_command == "plan":
            rows = power.replacement_plan(args.horizon_days, args.batch_days)
        elif args.power_command == "backtest":
            res = power.backtest(args.horizon_days)
            rows = [{"method": k, **v} for k, v in res.items() if isinstance(v, dict)]
        else:
            rows = fleet.query("select * from battery_discharge_summary")
            print(format_rows(rows, args.format))
            rows = power.attribution()
        print(format_rows(rows, args.format))
    return 0
