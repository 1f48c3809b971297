"""``tsfleet analyze`` and ``tsfleet device``."""

from __future__ import annotations

import json

from tsfleet.cli import _json_default, format_rows, open_fleet
from tsfleet.errors import TsfleetError


def register(sub) -> None:
    a = sub.add_parser("analyze", help="run the analyses once, incrementally")
    a.add_argument("--only", default=None, help="comma-separated: power,calibration,...")
    a.add_argument("--force", action="store_true", help="recompute in full")
    a.add_argument("--db", dest="sub_db", default=None)
    a.set_defaults(func=cmd_analyze)
    r = sub.add_parser("retention", help="roll up and delete raw readings older than N days")
    r.add_argument("--raw-days", type=int, default=90)
    r.add_argument("--hourly-days", type=int, default=400)
    r.add_argument("--db", dest="sub_db", default=None)
    r.set_defaults(func=cmd_retention)
    d = sub.add_parser("device", help="the card of one device")
    d.add_argument("device_id")
    d.add_argument("--format", choices=("table", "json"), default="table")
    d.add_argument("--db", dest="sub_db", default=None)
    d.set_defaults(func=cmd_device)


def cmd_analyze(args) -> int:
    with open_fleet(args) as fleet:
        results = fleet.analyze(only=args.only, force=args.force)
    print(format_rows([r.__dict__ for r in results]))
    failed = [r.analysis for r in results if r.status == "failed"]
    if failed:
        raise TsfleetError(f"analysis failed: {', '.join(failed)} (see the freshness view)")
    return 0


def cmd_device(args) -> int:
    with open_fleet(args, read_only=True) as fleet:
        card = fleet.device(args.device_id)
    if args.format == "json":
        print(json.dumps(card, default=_json_default, indent=2))
        return 0
    for section, value in card.items():
        if section == "device_id":
            print(f"device {value}")
        elif value is None or value == []:
            print(f"\n{section}: -")
        elif isinstance(value, dict):
            print(f"\n{section}:")
            for k, v in value.items():
                print(f"  {k:<22} {v}")
        else:
            print(f"\n{section}:")
            print(format_rows(value))
    return 0


def cmd_retention(args) -> int:
    with open_fleet(args) as fleet:
        res = fleet.retain(args.raw_days, args.hourly_days)
    print(f"cutoff {res.cutoff_at}: {res.n_raw_deleted:,} raw readings rolled up and deleted "
          f"({res.n_hourly_rows:,} hourly, {res.n_daily_rows:,} daily rollup rows written)")
    return 0
