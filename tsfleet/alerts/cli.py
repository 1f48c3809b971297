"""``tsfleet alerts evaluate|list|ack|silence|notify|history`` and ``tsfleet workorders``."""

from __future__ import annotations

import argparse
import json

from tsfleet.alerts.api import OPEN_STATES, STATES
from tsfleet.cliutil import (
    add_as_of,
    add_format,
    add_window,
    json_default,
    json_objects,
    open_fleet,
    open_plan,
    parse_time,
    plural,
    positive_number,
    print_plan,
    print_rows,
    progress,
    whole_number_from,
)


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("alerts", help="evaluate alert rules, list, acknowledge and silence")
    asub = a.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")

    e = asub.add_parser("evaluate", help="evaluate the rules once and advance every alert")
    e.add_argument("--rules", default=None, help="rules TOML file (default: the built-in pack)")
    e.add_argument("--at", default=None, help="evaluation time, ISO UTC (default now)")
    e.add_argument("--offline-k", type=float, default=3.0,
                   help="offline after this many missed reporting intervals (default 3)")
    e.set_defaults(func=cmd_evaluate)

    b = asub.add_parser("list", help="list alerts")
    b.add_argument("--state", action="append", choices=STATES,
                   help="states to show (repeatable; default the open ones)")
    b.add_argument("--all", action="store_true", help="every state")
    b.add_argument("--rule", default=None, help="only alerts of this rule")
    b.add_argument("--site", default=None, help="only alerts of this site")
    add_format(b).set_defaults(func=cmd_list)

    k = asub.add_parser("ack", help="acknowledge a firing alert")
    k.add_argument("fingerprint", help="the alert's fingerprint (see alerts list)")
    k.add_argument("--by", default=None, help="who acknowledges")
    k.set_defaults(func=cmd_ack)

    s = asub.add_parser("silence", help="mute alerts matching labels for a while")
    s.add_argument("matchers", nargs="+", help="label=value, label!=value, label=~re, label!~re")
    s.add_argument("--duration", default="2h", help="e.g. 30m, 2h, 1d (default 2h)")
    s.add_argument("--by", default=None, help="who silences")
    s.add_argument("--comment", default=None, help="why")
    s.set_defaults(func=cmd_silence)

    n = asub.add_parser("notify", help="post owed notifications to a webhook (Alertmanager v4) "
                                       "or push alerts into Alertmanager (--alertmanager)")
    n.add_argument("url", nargs="?", default=None, help="webhook URL (Alertmanager v4 body)")
    n.add_argument("--alertmanager", metavar="URL", default=None,
                   help="push firing and resolved alerts to Alertmanager's v2 API at URL "
                        "(http://host:9093); repeat the call every minute or so while "
                        "alerts fire (tsfleet serve --alertmanager does)")
    n.add_argument("--generator-url", default="http://tsfleet.invalid/alerts",
                   help="base of each alert's generatorURL (the fingerprint is appended)")
    n.add_argument("--receiver", default="tsfleet", help="receiver name sent (default tsfleet)")
    n.add_argument("--group-by", default="alertname,site",
                   help="labels that group alerts into one notification (default alertname,site)")
    n.add_argument("--attempts", type=whole_number_from(1), default=5,
                   help="tries per notification (default 5)")
    n.add_argument("--timeout", type=positive_number, default=10.0,
                   help="seconds per request (default 10)")
    n.set_defaults(func=cmd_notify)

    h = asub.add_parser("history", help="state changes of the alerts")
    h.add_argument("fingerprint", nargs="?", default=None, help="one alert (default all)")
    add_format(h).set_defaults(func=cmd_history)

    w = sub.add_parser("workorders", help="the maintenance plan: one work order per site visit")
    add_format(w, default="table")
    w.add_argument("--site", default=None, help="only this site")
    add_window(w, "--horizon-days")
    add_as_of(w)
    w.add_argument("--no-plan", action="store_true",
                   help="print the stored plan as is (reads only)")
    w.add_argument("--send", default=None, metavar="URL",
                   help="also post each new work order revision to this ticket endpoint")
    w.set_defaults(func=cmd_workorders)


def _at(text: str | None):
    return parse_time(text, "--at")


def cmd_evaluate(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        ev = fleet.alerts.evaluate(args.rules, at=_at(args.at), offline_k=args.offline_k)
    print(ev)
    for rule, reason in ev.skipped.items():
        print(f"  skipped {rule}: {reason}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    states = None if args.all else (args.state or list(OPEN_STATES))
    with open_fleet(args, read_only=True) as fleet:
        rows = fleet.alerts.list_alerts(states, rule=args.rule, site=args.site)
    if args.format == "table":
        rows = [{k: v for k, v in r.items() if k not in ("labels", "active_since")} for r in rows]
    elif args.format == "json":       # labels as an object, not JSON text in a string
        rows = json_objects(rows)
    print_rows(rows, args)
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        row = fleet.alerts.ack(args.fingerprint, by=args.by)
    print(f"acknowledged {row['fingerprint']} ({row['rule']})")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        silence_id = fleet.alerts.silence(args.matchers, duration=args.duration, by=args.by,
                                          comment=args.comment)
        muted = fleet.query("select count(*) as n from alerts where silenced_by = ?",
                            [silence_id])[0]["n"]
    print(f"{silence_id}: {plural(muted, 'alert')} muted for {args.duration}")
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from tsfleet.alerts.http import RetryPolicy
    from tsfleet.errors import InvalidParameter

    if not args.url and not args.alertmanager:
        raise InvalidParameter("give a webhook URL, --alertmanager URL, or both")
    policy = RetryPolicy(max_attempts=args.attempts, timeout_s=args.timeout)
    failed = False
    if args.alertmanager:
        with open_fleet(args) as fleet:
            pushed = fleet.alerts.push_alertmanager(args.alertmanager, policy=policy,
                                                    generator=args.generator_url)
        print(f"alertmanager: {pushed}")
        failed = not pushed.ok
    if not args.url:
        return 1 if failed else 0
    with open_fleet(args) as fleet:
        report = fleet.alerts.notify(args.url, receiver=args.receiver,
                                     group_by=[g for g in args.group_by.split(",") if g],
                                     policy=policy)
    print(report)
    return 0 if not (report.failed or failed) else 1


def cmd_history(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        print_rows(fleet.alerts.history(args.fingerprint), args)
    return 0


def _counts(actions: str) -> dict[str, int]:
    """``"recalibrate:1, replace_battery:2"`` as ``{"recalibrate": 1, ...}``."""
    pairs = (a.rsplit(":", 1) for a in actions.split(", ") if a)
    return {name: int(n) for name, n in pairs}


def cmd_workorders(args: argparse.Namespace) -> int:
    with open_plan(args, check=lambda f: f.check_site(args.site, "work_orders")) as (fleet, when):
        if args.format == "json":
            orders = [{**o, "actions": _counts(o["actions"])}
                      for o in fleet.alerts.work_orders(args.site)]
            print(json.dumps(orders, default=json_default, indent=2))
        elif args.format == "csv":
            print_rows(fleet.alerts.work_orders(args.site, flat=True), args)
        else:
            rows = [{k: o[k] for k in ("workorder_id", "site", "visit_no", "due_at", "severity",
                                       "n_items", "n_overdue", "actions")}
                    for o in fleet.alerts.work_orders(args.site)]
            print_plan(rows, args, when, "work orders")
        if args.send:
            report = fleet.alerts.export_tickets(args.send)
            progress(f"tickets: {report}")
            return 0 if not report.failed else 1
    return 0
