"""``tsfleet environment ...``: thin wrapper over :class:`tsfleet.environment.Environment`."""

from __future__ import annotations

import argparse

from tsfleet.cliutil import (
    add_format,
    add_summary_format,
    open_fleet,
    print_rows,
    print_sentences,
    print_summary,
)


def register(sub) -> None:
    p = sub.add_parser("environment", help="environment exposure, effects, envelopes, stress")
    ps = p.add_subparsers(dest="environment_command", required=True, metavar="ACTION")
    a = ps.add_parser("analyze", help="run the analysis, write the environment_* tables and "
                                      "summarise them")
    a.add_argument("--max-gap-hours", type=int, default=4,
                   help="interpolate gaps up to this many hours (default 4)")
    ps.add_parser("report", aliases=["recommendations"],
                  help="problem zones as sentences (add --format for rows)")
    e = ps.add_parser("effects", help="effects of each factor on each outcome")
    e.add_argument("--method", choices=("glm_poisson", "spearman"), default=None,
                   help="only effects estimated by this method (default both)")
    li = ps.add_parser("limits", help="operating limits that follow the fitted effects, as "
                       "sentences (--format table, csv or json for rows)")
    li.add_argument("--device-type", default=None, help="only this device type")
    v = ps.add_parser("envelopes", help="failure rates by band per device type")
    v.add_argument("--device-type", default=None, help="only this device type")
    m = ps.add_parser("maintenance", help="devices ranked by 30-day failure probability")
    m.add_argument("--limit", type=int, default=20, help="devices to show (default 20)")
    for name, s in ps.choices.items():
        if name == "recommendations":          # the alias: the same parser as report
            continue
        if name == "analyze":                   # a summary: sentences or key figures
            add_summary_format(s)
        elif name in ("report", "limits"):      # sentences, or rows in a table, csv, json
            add_format(s, ("text", "table", "csv", "json"), default="text")
        else:
            add_format(s)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cmd = {"recommendations": "report"}.get(args.environment_command, args.environment_command)
    with open_fleet(args, read_only=cmd != "analyze") as fleet:
        env = fleet.environment
        if cmd == "analyze":
            env.analyze(max_gap_hours=args.max_gap_hours)
            print_summary(args, env.summary, env.figures)
            return 0
        if cmd == "report" and args.format == "text":
            print_sentences(env.report(), "no problem zones found")
            return 0
        if cmd == "limits" and args.format == "text":
            print_sentences((r["sentence"] for r in env.limits(args.device_type)),
                            "no significant environmental effect")
            return 0
        if cmd == "report":
            rows = env.recommendations()
        elif cmd == "effects":
            rows = env.effects(method=args.method)
        elif cmd == "limits":
            rows = env.limits(args.device_type)
        elif cmd == "envelopes":
            rows = env.envelopes(args.device_type)
        else:
            rows = env.maintenance(args.limit)
        print_rows(rows, args, "table" if args.format == "text" else args.format)
    return 0
