"""``tsfleet alerts evaluate|list|ack|silence|notify|history`` and ``tsfleet workorders``."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from tsfleet.alerts.api import OPEN_STATES, STATES
from tsfleet.alerts.http import RetryPolicy
from tsfleet.errors import InvalidParameter


def register(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("alerts", help="evaluate alert rules, list, acknowledge and silence")
    a.add_argument("--db", dest="sub_db", default=None)
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
    b.add_argument("--rule", default=None)
    b.add_argument("--site", default=None)
    b.add_argument("--format", choices=("table", "csv", "json"), default="table")
    b.set_defaults(func=cmd_list)

    k = asub.add_parser("ack", help="acknowledge a firing alert")
    k.add_argument("fingerprint")
    k.add_argument("--by", default=None)
    k.set_defaults(func=cmd_ack)

    s = asub.add_parser("silence", help="mute alerts matching labels for a while")
    s.add_argument("matchers", nargs="+", help="label=value, label!=value, label=~re, label!~re")
    s.add_argument("--duration", default="2h", help="e.g. 30m, 2h, 1d (default 2h)")
    s.add_argument("--by", default=None)
    s.add_argument("--comment", default=None)
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
    n.add_argument("--receiver", default="tsfleet")
    n.add_argument("--group-by", default="alertname,site")
    n.add_argument("--attempts", type=int, default=5)
    n.add_argument("--timeout", type=float, default=10.0)
    n.set_defaults(func=cmd_notify)

    h = asub.add_parser("history", help="state changes of the alerts")
    h.add_argument("fingerprint", nargs="?", default=None)
    h.add_argument("--format", choices=("table", "csv", "json"), default="table")
    h.set_defaults(func=cmd_history)

    w = sub.add_parser("workorders", help="work orders: one per site visit (JSON or CSV)")
    w.add_argument("--db", dest="sub_db", default=None)
    w.add_argument("--format", choices=("json", "csv", "table"), default="json")
    w.add_argument("--site", default=None)
    w.add_argument("--horizon-days", type=float, default=30.0,
                   help="items due within this many days of a visit's first join it")
    w.add_argument("--no-plan", action="store_true", help="print the stored plan as is")
    w.add_argument("--send", default=None, metavar="URL",
                   help="also post each new work order revision to this ticket endpoint")
    w.set_defaults(func=cmd_workorders)


def _fleet(args: argparse.Namespace, read_only: bool = False):
    from tsfleet.cli import open_fleet
    return open_fleet(args, read_only=read_only)


def _at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError as exc:
        raise InvalidParameter(f"--at must be an ISO time like 2026-06-01T12:00, got {text!r}"
                               ) from exc


def cmd_evaluate(args: argparse.Namespace) -> int:
    with _fleet(args) as fleet:
        ev = fleet.alerts.evaluate(args.rules, at=_at(args.at), offline_k=args.offline_k)
    print(ev)
    for rule, reason in ev.skipped.items():
        print(f"  skipped {rule}: {reason}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tsfleet.cli import format_rows
    states = None if args.all else (args.state or list(OPEN_STATES))
    with _fleet(args) as fleet:
        rows = fleet.alerts.list_alerts(states, rule=args.rule, site=args.site)
    if args.format == "table":
        rows = [{k: v for k, v in r.items() if k not in ("labels", "active_since")} for r in rows]
    print(format_rows(rows, args.format))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    with _fleet(args) as fleet:
        row = fleet.alerts.ack(args.fingerprint, by=args.by)
    print(f"acknowledged {row['fingerprint']} ({row['rule']})")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    with _fleet(args) as fleet:
        silence_id = fleet.alerts.silence(args.matchers, duration=args.duration, by=args.by,
                                          comment=args.comment)
        muted = fleet.query("select count(*) as n from alerts where silenced_by = ?",
                            [silence_id])[0]["n"]
    print(f"{silence_id}: {muted} alerts muted for {args.duration}")
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from tsfleet.errors import InvalidParameter

    if not args.url and not args.alertmanager:
        raise InvalidParameter("give a webhook URL, --alertmanager URL, or both")
    policy = RetryPolicy(max_attempts=args.attempts, timeout_s=args.timeout)
    failed = False
    if args.alertmanager:
        with _fleet(args) as fleet:
            pushed = fleet.alerts.push_alertmanager(args.alertmanager, policy=policy,
                                                    generator=args.generator_url)
        print(f"alertmanager: {pushed}")
        failed = not pushed.ok
    if not args.url:
        return 1 if failed else 0
    with _fleet(args) as fleet:
        report = fleet.alerts.notify(args.url, receiver=args.receiver,
                                     group_by=[g for g in args.group_by.split(",") if g],
                                     policy=policy)
    print(report)
    return 0 if not (report.failed or failed) else 1


def cmd_history(args: argparse.Namespace) -> int:
    from tsfleet.cli import format_rows
    with _fleet(args) as fleet:
        print(format_rows(fleet.alerts.history(args.fingerprint), args.format))
    return 0


def cmd_workorders(args: argparse.Namespace) -> int:
    from tsfleet.cli import _json_default, format_rows
    with _fleet(args) as fleet:
        if not args.no_plan:
            fleet.alerts.plan_work_orders(horizon_days=args.horizon_days)
        if args.format == "json":
            print(json.dumps(fleet.alerts.work_orders(args.site), default=_json_default,
                             indent=2))
        else:
            print(format_rows(fleet.alerts.work_orders(args.site, flat=True), args.format))
        if args.send:
            report = fleet.alerts.export_tickets(args.send)
            from tsfleet.cli import progress
            progress(f"tickets: {report}")
            return 0 if not report.failed else 1
    return 0
