"""``tsfleet snapshot`` and ``tsfleet export``: thin wrappers over :mod:`tsfleet.share`."""

from __future__ import annotations

import argparse

from tsfleet.share.partition import DEFAULT_BUCKETS
from tsfleet.share.snapshot import VIEW_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser(
        "snapshot", help="write a consistent copy of the store for read-only readers",
        description="Write a consistent copy of the store beside OUT and rename it into "
                    "place atomically.")
    s.add_argument("out", metavar="OUT", help="snapshot file to (re)place, e.g. share.duckdb")
    s.add_argument("--storage-version", default=None, metavar="VERSION",
                   help="DuckDB storage version, e.g. v1.0.0 for DuckDB 1.x readers "
                        "(default: this DuckDB's own)")
    s.add_argument("--views", choices=VIEW_MODES, default="keep",
                   help="keep views as views (default) or materialize them as tables")
    s.set_defaults(func=cmd_snapshot)

    e = subparsers.add_parser(
        "export", help="export readings and tables as hive-partitioned Parquet",
        description="Export readings partitioned by UTC date and device-hash bucket, and every "
                    "other table whole. Whole days are exported; re-running a range replaces "
                    "its partitions.")
    e.add_argument("directory", metavar="DIR", help="export folder (created if missing)")
    e.add_argument("--since", default=None, help="first day or time (UTC, ISO); default: first "
                                                 "reading")
    e.add_argument("--until", default=None, help="end (exclusive, UTC, ISO); default: last "
                                                 "reading")
    e.add_argument("--buckets", type=int, default=DEFAULT_BUCKETS,
                   help=f"device-hash buckets (default {DEFAULT_BUCKETS}; fixed per DIR)")
    e.set_defaults(func=cmd_export)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from tsfleet.cliutil import open_fleet, print_sentences

    with open_fleet(args, read_only=True) as fleet:
        report = fleet.snapshot(args.out, storage_version=args.storage_version, views=args.views)
    print_sentences([str(report)])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tsfleet.cliutil import open_fleet, print_sentences

    with open_fleet(args, read_only=True) as fleet:
        report = fleet.export(args.directory, since=args.since, until=args.until,
                              buckets=args.buckets)
    print_sentences([str(report)])
    return 0
