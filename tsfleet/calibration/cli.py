"""``tsfleet calibration ...``: detect drift, list drift and faults, schedule, history.

``calibration schedule`` is the calibration view of the one maintenance plan
(``tsfleet workorders``)."""

from __future__ import annotations

import argparse

from tsfleet.calibration.verdict import VERDICTS
from tsfleet.cliutil import (
    add_as_of,
    add_format,
    add_horizon,
    add_summary_format,
    add_window,
    check_horizon,
    open_fleet,
    open_plan,
    print_plan,
    print_rows,
    print_summary,
    within_horizon,
)

SCHEDULE_TABLE = ("workorder_id", "site", "visit_due_at", "subject_id", "finding", "due_at",
                  "is_overdue", "action")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibration", help="sensor drift, faults and the recalibration schedule")
    csub = p.add_subparsers(dest="calibration_command", required=True, metavar="ACTION")

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        a = csub.add_parser(name, help=help)
        if name == "detect":        # a summary (sentences or key figures), not a listing
            add_summary_format(a)
        else:
            add_format(a)
        a.set_defaults(func=func)
        return a

    d = add("detect", "run the analysis (drift, faults, stability, schedule) and summarise "
                      "it", cmd_detect)
    d.add_argument("--fdr", type=float, default=0.01,
                   help="false discovery rate of the drift tests (Benjamini-Hochberg, "
                        "default 0.01)")
    r = add("drift", "the sensor_drift table", cmd_drift)
    r.add_argument("--verdict", default=None, choices=VERDICTS, metavar="VERDICT",
                   help=f"only this verdict: {', '.join(VERDICTS)}")
    add("faults", "stuck, dead, spiking and out-of-range sensors", cmd_faults)
    s = add("schedule", "recalibrations: the calibration items of the one maintenance plan "
                        "(tsfleet workorders)", cmd_schedule)
    add_horizon(s)
    add_window(s, "--visit-window-days")   # its name before the plan was one (tsfleet 0.1)
    add_as_of(s)
    h = add("history", "calibration records of one sensor", cmd_history)
    h.add_argument("device_id", help="the sensor's device id")
    add("stability", "drift rate against environmental exposure", cmd_stability)


def cmd_detect(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        fleet.calibration.detect(fdr=args.fdr)
        fleet.calibration.stability()
        fleet.calibration.schedule()
        print_summary(args, fleet.calibration.summary, fleet.calibration.figures)
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        sql = ("select device_id, metric, verdict, level, confidence, "
               "round(drift_pct, 2) as drift_pct, "
               "round(drift_rate_pct_per_day, 3) as pct_per_day, "
               "first_detectable_at::date as detected_on, "
               "crosses_tolerance_at::date as crosses_on "
               "from sensor_drift where ? is null or verdict = ? order by abs(drift_pct) desc")
        print_rows(fleet.query(sql, [args.verdict, args.verdict]), args)
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        print_rows(fleet.query("select device_id, metric, zone, fault, since_at, detail "
                               "from sensor_faults order by device_id, fault"), args)
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    check_horizon(args)
    with open_plan(args) as (fleet, when):
        rows = within_horizon(fleet.alerts.work_orders(domain="calibration"), args, when.at)
    if args.format == "table" and not args.wide:
        rows = [{c: r.get(c) for c in SCHEDULE_TABLE} for r in rows]
    print_plan(rows, args, when, "recalibrations")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        print_rows(fleet.calibration.history(args.device_id), args)
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        print_rows(fleet.query("select * exclude (computed_at, params) "
                               "from calibration_stability order by factor"), args)
    return 0
