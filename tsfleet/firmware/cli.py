"""``tsfleet firmware ...``: inventory, findings, campaigns, compliance report, OSV."""

from __future__ import annotations

import argparse
import csv
import io
import json

from tsfleet.cli import _json_default, format_rows, open_fleet

FORMATS = ("table", "csv", "json")


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
        s.add_argument("--format", choices=FORMATS, default="table")
        s.add_argument("--db", dest="sub_db", default=None)
        s.set_defaults(func=_read, action=name)
    c = sub.add_parser("consistency", help="version consistency per group")
    c.add_argument("--group-by", default="model_site",
                   choices=("model_site", "model_zone", "model_hardware_rev", "model"))
    c.add_argument("--format", choices=FORMATS, default="table")
    c.add_argument("--db", dest="sub_db", default=None)
    c.set_defaults(func=_read, action="consistency")
    r = sub.add_parser("report", help="compliance report for an auditor (json or csv)")
    r.add_argument("--format", choices=("json", "csv"), default="json")
    r.add_argument("--group-by", default="model_site",
                   choices=("model_site", "model_zone", "model_hardware_rev", "model"))
    r.add_argument("--db", dest="sub_db", default=None)
    r.set_defaults(func=_report)
    o = sub.add_parser("osv", help="load an OSV vulnerability feed (file or folder)")
    o.add_argument("source")
    o.add_argument("--feed", default="default",
                   help="label of the feed; selects its osv-map rules (default: default)")
    o.add_argument("--db", dest="sub_db", default=None)
    o.set_defaults(func=_osv)
    m = sub.add_parser("osv-map", help="read an OSV package name as a manufacturer's model")
    m.add_argument("package", help="affected[].package.name as the feed spells it")
    m.add_argument("manufacturer")
    m.add_argument("model", nargs="?", default="*", help="model (default *: every model)")
    m.add_argument("--ecosystem", default="*", help="only for this package ecosystem")
    m.add_argument("--feed", default="*", help="only for the feed loaded with this label")
    m.add_argument("--note", default=None)
    m.add_argument("--format", choices=FORMATS, default="table")
    m.add_argument("--db", dest="sub_db", default=None)
    m.set_defaults(func=_osv_map)
    a = sub.add_parser("analyze", help="rank versions, judge advisories, check new reports")
    a.add_argument("--db", dest="sub_db", default=None)
    a.set_defaults(func=_analyze)


def _read(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        fw = fleet.firmware
        rows = {"inventory": fw.inventory, "findings": fw.findings, "campaigns": fw.campaigns,
                "health": fw.health, "events": fw.security_events,
                "consistency": lambda: fw.consistency(args.group_by)}[args.action]()
    print(format_rows(rows, args.format))
    return 0


def _report(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        report = fleet.firmware.compliance_report(args.group_by)
    if args.format == "json":
        print(json.dumps(report, default=_json_default, indent=2))
    else:
        print(compliance_csv(report))
    return 0


def compliance_csv(report: dict) -> str:
    """One row per non-compliant device, with the report's as-of time on each row."""
    buf = io.StringIO()
    cols = ["as_of", "device_id", "manufacturer", "model", "hardware_rev", "site", "zone",
            "version", "image_hash", "target_version", "reasons"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for d in report["non_compliant_devices"]:
        w.writerow({**d, "as_of": report["as_of"]})
    return buf.getvalue().rstrip("\n")


def _osv(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        print(fleet.firmware.load_osv(args.source, feed=args.feed))
    return 0


def _osv_map(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        rows = fleet.firmware.map_osv_package(args.package, args.manufacturer, args.model,
                                              ecosystem=args.ecosystem, feed=args.feed,
                                              note=args.note)
    print(format_rows([{k: v for k, v in r.items() if k != "set_at"} for r in rows],
                      args.format))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    with open_fleet(args) as fleet:
        fleet.firmware.analyze()
        for line in fleet.firmware.summary():
            print(line)
    return 0
