"""The ``tsfleet`` command: parses arguments, calls the API, prints.

Errors are one line on stderr and exit status 2; nothing prints a traceback.
Domain packages add their own sub-commands through ``tsfleet.<domain>.cli``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import io
import json
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import duckdb

from tsfleet.errors import InvalidParameter, TsfleetError
from tsfleet.fleet import Fleet, default_db_path

#: Domain packages, in the order ``demo`` reports them.
DOMAINS = ("power", "firmware", "calibration", "environment", "network", "alerts")
#: Other packages that add sub-commands (``tsfleet.<name>.cli.register``).
COMMAND_PACKAGES = DOMAINS + ("live", "share", "service")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def format_rows(rows: list[dict], fmt: str = "table") -> str:
    """Render query rows as an aligned table, CSV or JSON."""
    if fmt == "json":
        return json.dumps(rows, default=_json_default, indent=2)
    if not rows:
        return "(no rows)" if fmt == "table" else ""
    cols = list(rows[0])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    return str(v)


def _json_default(v: object) -> object:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsfleet", description="Monitoring backend for IoT fleets.")
    p.add_argument("--db", default=None,
                   help="DuckDB file (default: $TSFLEET_DB or fleet.duckdb)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="simulate a fleet into the store and print what tsfleet finds")
    d.add_argument("--devices", type=int, default=400)
    d.add_argument("--days", type=int, default=60)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--db", dest="sub_db", default=None, help="DuckDB file to (re)create")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("ingest", help="ingest files of one kind")
    i.add_argument("kind", nargs="?", help="ingest kind (readings, devices, metrics, ...)")
    i.add_argument("files", nargs="*")
    i.add_argument("--retry-quarantine", action="store_true",
                   help="re-ingest quarantined readings whose metric is declared now")
    i.add_argument("--unknown-devices", choices=("accept", "quarantine"), default="accept")
    i.add_argument("--db", dest="sub_db", default=None)
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("sql", help="run a SQL query against the store")
    s.add_argument("query")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--db", dest="sub_db", default=None)
    s.set_defaults(func=cmd_sql)

    n = sub.add_parser("info", help="row counts, schema version and time range")
    n.add_argument("--db", dest="sub_db", default=None)
    n.set_defaults(func=cmd_info)

    for name in COMMAND_PACKAGES:
        module = f"tsfleet.{name}.cli"
        if importlib.util.find_spec(f"tsfleet.{name}") and importlib.util.find_spec(module):
            importlib.import_module(module).register(sub)
    return p


def db_path(args: argparse.Namespace) -> str:
    return getattr(args, "sub_db", None) or args.db or default_db_path()


def open_fleet(args: argparse.Namespace, read_only: bool = False) -> Fleet:
    return Fleet(db_path(args), read_only=read_only)


def cmd_demo(args: argparse.Namespace) -> int:
    from tsfleet.simulate import SimConfig, simulate

    path = Path(db_path(args))
    if path.exists():
        with duckdb.connect(str(path), read_only=True) as con:
            is_demo = con.execute("select count(*) from information_schema.schemata "
                                  "where schema_name = 'sim'").fetchone()[0]
        if not is_demo:
            raise TsfleetError(f"{path} exists and is not a demo store; choose another --db")
        path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
    t0 = time.perf_counter()
    progress(f"simulating {args.devices} devices x {args.days} days (seed {args.seed}) ...")
    sim = simulate(SimConfig(n_devices=args.devices, days=args.days, seed=args.seed))
    progress(f"ingesting {sim.n_readings:,} readings into {path} ...")
    with Fleet(str(path)) as fleet:
        counts = sim.write(fleet, progress=True)
        print(f"tsfleet demo: {path}")
        print(f"  stored {counts['readings']:,} readings from {counts['devices']} devices and "
              f"{counts['gateways']} gateways in {time.perf_counter() - t0:.1f} s")
        q = fleet.query("select sum(n_duplicates) as d, sum(n_quarantined) as q "
                        "from ingest_batches")[0]
        print(f"  absorbed {q['d'] or 0:,} duplicate readings; quarantined {q['q'] or 0:,} rows")
        failed = []
        for name in DOMAINS:
            if not importlib.util.find_spec(f"tsfleet.{name}"):
                continue
            progress(f"analysing {name} ...")
            run = fleet.analyze(only=name, force=True)[0]   # recorded in analysis_runs
            if run.status != "ok":
                failed.append(name)
                print(f"  {name}: analysis failed: {run.error}")
                continue
            for line in getattr(fleet, name).summary():
                print(f"  {name}: {line}")
    print(f"  explore: tsfleet --db {path} sql \"select * from fleet_overview\"")
    if failed:
        raise TsfleetError(f"analysis failed: {', '.join(failed)} (see the freshness view)")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    if not args.retry_quarantine and not (args.kind and args.files):
        raise InvalidParameter("tsfleet ingest needs a kind and at least one file, "
                               "or --retry-quarantine")
    with open_fleet(args) as fleet:
        for f in args.files:
            report = fleet.ingest(args.kind, f, unknown_devices=args.unknown_devices)
            print(report)
            if args.kind == "metrics":      # declared: what waited in quarantine came in
                print(fleet.metrics.last_retry)
        if args.retry_quarantine:
            print(fleet.metrics.retry_quarantine())
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=Path(db_path(args)).exists()) as fleet:
        try:
            rows = fleet.query(args.query)
        except duckdb.Error as exc:
            raise TsfleetError(f"SQL error: {str(exc).splitlines()[0]}") from exc
        print(format_rows(rows, args.format))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if not Path(db_path(args)).exists():
        raise TsfleetError(f"no store at {db_path(args)}")
    with open_fleet(args, read_only=True) as fleet:
        info = fleet.info()
    print(f"store               {info['path']}")
    print(f"schema version      {info['schema_version']}")
    print(f"readings from       {_cell(info['readings_from'])}")
    print(f"readings to         {_cell(info['readings_to'])}")
    for table, n in info["rows"].items():
        print(f"{table:<20}{n:,}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TsfleetError as exc:
        print(f"tsfleet: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"tsfleet: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tsfleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
