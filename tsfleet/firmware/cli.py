"""``tsfleet firmware ...``: inventory, findings, campaigns, compliance report, OSV."""

from __future__ import annotations

import argparse
import json

from tsfleet.cliutil import (
    add_format,
    add_summary_format,
    format_rows,
    json_default,
    open_fleet,
    plain,
    print_rows,
    print_summary,
)
from tsfleet.rows import mapped

GROUPINGS = ("model_site", "model_zone", "model_hardware_rev", "model")
#: Columns on a terminal (all of them with --wide, csv or json).
TABLE_COLUMNS = {"inventory": ("device_id", "model", "site", "version", "target_version",
                               "release_status", "is_outdated", "is_vulnerable", "max_severity",
                               "days_on_version"),
                 # the verdict first: the drains and shares are in --wide, csv and json
                 "health": ("manufacturer", "model", "version", "n_updated", "verdict",
                            "reasons")}
#: Columns given as comma- or semicolon-joined text by the views, shown as lists.
LISTS = {"deviating_devices": ",", "reasons": "; "}


def register(subparsers) -> None:
    p = subparsers.add_parser("firmware", help="firmware inventory, findings, campaigns, "
                              "compliance")
    sub = p.add_subparsers(dest="firmware_command", required=True, metavar="ACTION")
    for name, help_ in (("inventory", "each device's version, target and flags"),
                        ("findings", "open firmware findings"),
                        ("campaigns", "update campaign progress and halt recommendations"),
                        ("health", "post-update health verdict per version"),
                        ("events", "unexpected firmware changes raised at ingest")):
        s = sub.add_parser(name, help=help_)
        add_format(s)
        s.set_defaults(func=_read, action=name)
    c = sub.add_parser("consistency", help="version consistency per group")
    c.add_argument("--group-by", default="model_site", choices=GROUPINGS,
                   help="what a group is (default model_site)")
    add_format(c)
    c.set_defaults(func=_read, action="consistency")
    r = sub.add_parser("report", help="compliance report for an auditor: JSON document, or "
                                      "its non-compliant devices as CSV")
    add_format(r, ("json", "csv"), default="json")
    r.add_argument("--group-by", default="model_site", choices=GROUPINGS,
                   help="what a group is (default model_site)")
    r.set_defaults(func=_report)
    o = sub.add_parser("osv", help="load an OSV vulnerability feed (file or folder)")
    o.add_argument("source", help="an OSV JSON file, or a folder of them")
    o.add_argument("--feed", default="default",
                   help="label of the feed; selects its osv-map rules (default: default)")
    o.set_defaults(func=_osv)
    m = sub.add_parser("osv-map", help="read an OSV package name as a manufacturer's model")
    m.add_argument("package", help="affected[].package.name as the feed spells it")
    m.add_argument("manufacturer", help="the manufacturer the package belongs to")
    m.add_argument("model", nargs="?", default="*", help="model (default *: every model)")
    m.add_argument("--ecosystem", default="*", help="only for this package ecosystem")
    m.add_argument("--feed", default="*", help="only for the feed loaded with this label")
    m.add_argument("--note", default=None, help="why this mapping holds")
    add_format(m)
    m.set_defaults(func=_osv_map)
    a = sub.add_parser("analyze", help="rank versions, judge advisories, check new reports: "
                       "sentences (--format table, csv or json for key figures)")
    add_summary_format(a)
    a.set_defaults(func=_analyze)


def _read(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        fw = fleet.firmware
        rows = {"inventory": fw.inventory, "findings": fw.findings, "campaigns": fw.campaigns,
                "health": fw.health, "events": fw.security_events,
                "consistency": lambda: fw.consistency(args.group_by)}[args.action]()
    if args.format == "table" and not args.wide and args.action in TABLE_COLUMNS:
        rows = [{c: r.get(c) for c in TABLE_COLUMNS[args.action]} for r in rows]
    print_rows(mapped(rows, _lists) if args.format != "table" else rows, args)
    return 0


def _lists(record: dict) -> dict:
    """Joined text columns as lists (JSON arrays)."""
    return {k: (v.split(LISTS[k]) if v else []) if k in LISTS and (v is None or
                                                                  isinstance(v, str)) else v
            for k, v in record.items()}


def _report(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        report = fleet.firmware.compliance_report(args.group_by)
    report["groups"] = [_lists(g) for g in report["groups"]]
    report["non_compliant_devices"] = mapped(report["non_compliant_devices"],
                                             lambda d: {"as_of": report["as_of"], **_lists(d)})
    if args.format == "json":
        print(json.dumps(plain_tree(report), default=json_default, indent=2))
    else:
        print(compliance_csv(report))
    return 0


def compliance_csv(report: dict) -> str:
    """The report's non-compliant devices, the same records as its JSON carries, with the
    report's as-of time on each row."""
    return format_rows(report["non_compliant_devices"], "csv")


def plain_tree(v):
    """``v`` with NaN as null, at any depth."""
    if isinstance(v, dict):
        return {k: plain_tree(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain_tree(x) for x in v]
    return plain(v)


def _osv(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        print(fleet.firmware.load_osv(args.source, feed=args.feed))
    return 0


def _osv_map(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        rows = fleet.firmware.map_osv_package(args.package, args.manufacturer, args.model,
                                              ecosystem=args.ecosystem, feed=args.feed,
                                              note=args.note, known_only=True)
    print_rows(mapped(rows, lambda r: {k: v for k, v in r.items() if k != "set_at"}), args)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        fleet.firmware.analyze()
        print_summary(args, fleet.firmware.summary, fleet.firmware.figures)
    return 0
