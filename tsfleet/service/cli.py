"""``tsfleet analyze`` and ``tsfleet device``."""

from __future__ import annotations

import json

from tsfleet.cliutil import (
    TABLE_WIDTH,
    add_format,
    cell,
    clip,
    format_rows,
    json_default,
    json_objects,
    open_fleet,
    print_rows,
    print_sentences,
)
from tsfleet.errors import TsfleetError

#: Columns of the card's tables left to ``--format json`` (label sets, parameters).
CARD_HIDDEN = ("labels", "params", "annotations")


def register(sub) -> None:
    a = sub.add_parser("analyze", help="run the analyses once, incrementally")
    a.add_argument("--only", default=None, help="comma-separated: power,calibration,...")
    a.add_argument("--force", action="store_true", help="recompute in full")
    a.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local: in this process (default); dask: the per-device analyses "
                   "(firmware, power, calibration, environment) as tasks over the buckets "
                   "of --lake on Dask distributed")
    a.add_argument("--lake", default=None, help="--engine dask: a tsfleet export directory")
    a.add_argument("--scheduler", default=None,
                   help="--engine dask: tcp://HOST:8786 (default: a LocalCluster here)")
    a.add_argument("--buckets", type=int, default=None,
                   help="--engine dask: tasks per phase (default: the lake's device buckets)")
    a.add_argument("--workers", type=int, default=None,
                   help="--engine dask without --scheduler: local workers (default: one per "
                   "core)")
    add_format(a)
    a.set_defaults(func=cmd_analyze)
    r = sub.add_parser("retention", help="roll up and delete raw readings older than N days")
    r.add_argument("--raw-days", type=int, default=90,
                   help="keep raw readings this many days (default 90)")
    r.add_argument("--hourly-days", type=int, default=400,
                   help="keep hourly rollups this many days (default 400)")
    r.add_argument("--quarantine-days", type=int, default=None,
                   help="also delete quarantined rows and unmapped fields received more "
                   "than this many days ago, with their texts (default: keep them)")
    r.set_defaults(func=cmd_retention)
    d = sub.add_parser("device", help="the card of one device")
    d.add_argument("device_id", help="the device's id")
    add_format(d, ("table", "json"))
    d.set_defaults(func=cmd_device)


def cmd_analyze(args) -> int:
    if args.engine == "local" and any(v is not None for v in (
            args.lake, args.scheduler, args.buckets, args.workers)):
        raise TsfleetError("--lake, --scheduler, --buckets and --workers need --engine dask")
    if args.engine == "dask" and args.lake is None:
        raise TsfleetError("--engine dask needs --lake DIR (a tsfleet export of the store)")
    with open_fleet(args) as fleet:
        if args.engine == "dask":
            results = fleet.analyze(only=args.only, engine="dask",
                                    lake=args.lake, scheduler=args.scheduler,
                                    buckets=args.buckets, workers=args.workers)
        else:
            results = fleet.analyze(only=args.only, force=args.force)
    print_rows([{k: v for k, v in r.__dict__.items() if k != "failed_buckets"}
                for r in results], args)
    for r in results:
        for bucket, error in sorted((r.failed_buckets or {}).items()):
            print(clip(f"{r.analysis} bucket {bucket} failed twice: {error}", TABLE_WIDTH))
    failed = [r.analysis for r in results if r.status == "failed"]
    if failed:
        raise TsfleetError(f"analysis failed: {', '.join(failed)} (see the freshness view)")
    return 0


def cmd_device(args) -> int:
    with open_fleet(args, read_only=True) as fleet:
        card = fleet.device(args.device_id)
    if args.format == "json":       # labels and parameters as objects, not JSON text
        print(json.dumps(json_objects(card), default=json_default, indent=2))
        return 0
    for section, value in card.items():
        if section == "device_id":
            print(f"device {cell(value)} (times are UTC)")
        elif value is None or value == []:
            print(f"\n{section}: -")
        elif isinstance(value, dict):
            print(f"\n{section}:")
            for k, v in value.items():
                # a value cut at 120 columns ends in "…", as a table's cut cell does
                line = f"  {k:<22} {cell(v, k)}"
                print(line if args.wide else clip(line, TABLE_WIDTH))
        else:
            print(f"\n{section}:")
            rows = [{k: v for k, v in r.items() if k not in CARD_HIDDEN} for r in value]
            print(format_rows(rows, wide=args.wide, utc_note=False))
    return 0


def cmd_retention(args) -> int:
    with open_fleet(args) as fleet:
        res = fleet.retain(args.raw_days, args.hourly_days, args.quarantine_days)
    lines = [f"cutoff {cell(res.cutoff_at)} UTC: {res.n_raw_deleted:,} raw readings rolled up "
             f"and deleted ({res.n_hourly_rows:,} hourly, {res.n_daily_rows:,} daily rollup "
             "rows written)" if res.cutoff_at is not None else "no readings to roll up"]
    if res.quarantine_cutoff_at is not None:
        lines.append(f"received before {cell(res.quarantine_cutoff_at)} UTC: "
                     f"{res.n_quarantine_deleted:,} quarantined rows and "
                     f"{res.n_unmapped_deleted:,} unmapped fields deleted")
    print_sentences(lines)
    return 0
