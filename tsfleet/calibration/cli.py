"""``tsfleet calibration ...``: detect drift, list drift and faults, schedule, history."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibration", help="sensor drift, faults and the recalibration schedule")
    csub = p.add_subparsers(dest="calibration_command", required=True, metavar="ACTION")

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        a = csub.add_parser(name, help=help)
        a.add_argument("--db", dest="sub_db", default=None)
        a.add_argument("--format", choices=("table", "csv", "json"), default="table")
        a.set_defaults(func=func)
        return a

    d = add("detect", "run the analysis (drift, faults, stability, schedule)", cmd_detect)
    d.add_argument("--fdr", type=float, default=0.01, help="Benjamini-Hochberg level")
    r = add("drift", "the sensor_drift table", cmd_drift)
    r.add_argument("--verdict", default=None, help="only this verdict (e.g. needs_recalibration)")
    add("faults", "stuck, dead, spiking and out-of-range sensors", cmd_faults)
    s = add("schedule", "recalibration schedule batched by site visit", cmd_schedule)
    s.add_argument("--horizon-days", type=float, default=90)
    s.add_argument("--visit-window-days", type=float, default=14)
    h = add("history", "calibration records of one sensor", cmd_history)
    h.add_argument("device_id")
    add("stability", "drift rate against environmental exposure", cmd_stability)


def _print(rows: list[dict], fmt: str) -> int:
    from tsfleet.cli import format_rows

    print(format_rows(rows, fmt))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args) as fleet:
        fleet.calibration.detect(fdr=args.fdr)
        fleet.calibration.stability()
        fleet.calibration.schedule()
        return _print([{"summary": line} for line in fleet.calibration.summary()], args.format)


def cmd_drift(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args, read_only=True) as fleet:
        sql = ("select device_id, metric, verdict, level, confidence, "
               "round(drift_pct, 2) as drift_pct, "
               "round(drift_rate_pct_per_day, 3) as pct_per_day, "
               "first_detectable_at::date as detected_on, "
               "crosses_tolerance_at::date as crosses_on "
               "from sensor_drift where ? is null or verdict = ? order by abs(drift_pct) desc")
        return _print(fleet.query(sql, [args.verdict, args.verdict]), args.format)


def cmd_faults(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args, read_only=True) as fleet:
        return _print(fleet.query("select device_id, metric, zone, fault, since_at, detail "
                                  "from sensor_faults order by device_id, fault"), args.format)


def cmd_schedule(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args) as fleet:
        rows = fleet.calibration.schedule(args.horizon_days, args.visit_window_days)
        return _print(rows, args.format)


def cmd_history(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args, read_only=True) as fleet:
        return _print(fleet.calibration.history(args.device_id), args.format)


def cmd_stability(args: argparse.Namespace) -> int:
    from tsfleet.cli import open_fleet

    with open_fleet(args, read_only=True) as fleet:
        return _print(fleet.query("select * exclude (computed_at, params) "
                                  "from calibration_stability order by factor"), args.format)
