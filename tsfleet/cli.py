"""The ``tsfleet`` command: parses arguments, calls the API, prints.

Errors are one line on stderr and exit status 2; nothing prints a traceback, and a
reader that closes the pipe (``| head``) ends the command quietly. Domain packages add
their own sub-commands through ``tsfleet.<pkg>.cli``; what they share lives in
:mod:`tsfleet.cliutil`, so nothing imports this module back.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tsfleet.cliutil import (
    SERVED,
    ServedElsewhere,
    add_db,
    add_format,
    cell,
    check_store,
    open_fleet,
    plural,
    print_sentences,
    progress,
    quiet_broken_pipe,
    status_line,
    stream_rows,
)
from tsfleet.errors import IngestError, InvalidParameter, StoreError, TsfleetError, sql_error

#: Commands that packages add (``tsfleet.<package>.cli.register``): command -> (package,
#: its line in ``tsfleet --help``). Only the package of the command given is imported, so
#: that no command pays for the imports of another (a test keeps the lines in step).
COMMANDS = {
    "power": ("power", "battery forecasts, replacement plan, drain report"),
    "firmware": ("firmware", "firmware inventory, findings, campaigns, compliance"),
    "calibration": ("calibration", "sensor drift, faults and the recalibration schedule"),
    "environment": ("environment", "environment exposure, effects, envelopes, stress"),
    "network": ("network", "gateway load, balance, redundancy, failures and a rebalancing "
                           "plan"),
    "alerts": ("alerts", "evaluate alert rules, list, acknowledge and silence"),
    "workorders": ("alerts", "the maintenance plan: one work order per site visit"),
    "serve": ("live", "live ingest: MQTT and CoAP into the store (owns the DuckDB writer)"),
    "snmp-poll": ("live", "poll gateways and access points over SNMP into gateway_stats"),
    "snapshot": ("share", "write a consistent copy of the store for read-only readers"),
    "export": ("share", "export readings and tables as hive-partitioned Parquet"),
    "analyze": ("service", "run the analyses once, incrementally"),
    "retention": ("service", "roll up and delete raw readings older than N days"),
    "device": ("service", "the card of one device"),
}
COMMAND_PACKAGES = tuple(dict.fromkeys(pkg for pkg, _ in COMMANDS.values()))
#: Where ``demo`` writes unless told: never the default store of the other commands.
DEMO_DB = "demo.duckdb"
#: File name endings ``ingest`` picks up from a directory.
INGEST_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".ndjson", ".json")
#: ``ingest`` prints a progress line after this many seconds.
PROGRESS_AFTER_S = 2.0


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (and exit status 2), like the others."""

    def error(self, message: str):
        text = _suggest(message) + self._nearest_option(message)
        line = f"{self.prog}: error: {text}"
        # a choice named on the line needs no pointer to the list in --help, and a line
        # keeps to 120 columns without one
        hint = f" (see {self.prog} --help)"
        if "; choose from " in text or "; did you mean " in text or len(line + hint) > 120:
            hint = ""
        self.exit(2, f"{line}{hint}\n")

    def _nearest_option(self, message: str) -> str:
        """``; did you mean '--limit'?`` after "unrecognized arguments: --limt 5" when an
        option of this (sub)command is close to the first unknown one ("" otherwise)."""
        from tsfleet.errors import did_you_mean

        if not message.startswith("unrecognized arguments: "):
            return ""
        options = [o for a in self._actions if a.help != argparse.SUPPRESS
                   for o in a.option_strings if o.startswith("--")]
        for word in message.removeprefix("unrecognized arguments: ").split():
            if word.startswith("--"):
                return did_you_mean(word.split("=", 1)[0], options)
        return ""

    def check_leading_options(self, argv: Sequence[str]) -> None:
        """An option before the command word that this parser does not know is an error
        naming it (argparse read ``tsfleet --dbb x info`` as the command "x")."""
        known = [o for a in self._actions for o in a.option_strings]
        k = 0
        while k < len(argv) and argv[k].startswith("-") and argv[k] != "--":
            name = argv[k].split("=", 1)[0]
            hits = [name] if name in known else [o for o in known if o.startswith(name)]
            if len(hits) != 1:
                self.error(f"unrecognized arguments: {argv[k]}")
            k += 2 if hits[0] == "--db" and "=" not in argv[k] else 1


class _Version(argparse.Action):
    """``--version``: the installed package's version (read only when asked, so that the
    parser of every other command line pays nothing for it)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("tsfleet")
        except PackageNotFoundError:  # a source tree on PYTHONPATH, not installed
            from tsfleet import __version__ as text
        print(f"tsfleet {text}")
        parser.exit(0)


def _suggest(message: str) -> str:
    """argparse's "invalid choice: 'powr' (choose from ...)" as "invalid choice 'powr'; did
    you mean 'power'?" when one choice is close (the full list otherwise)."""
    import re

    from tsfleet.errors import did_you_mean

    m = re.fullmatch(r"(argument [^:]+): invalid choice: '([^']*)' \(choose from (.*)\)",
                     message)
    if not m:
        return message
    choices = re.findall(r"'([^']*)'", m.group(3))
    close = did_you_mean(m.group(2), choices)
    if close:
        return f"{m.group(1).removeprefix('argument ')}: invalid choice '{m.group(2)}'{close}"
    # a long list of choices is left to --help, so that the error stays one short line
    short = f"{m.group(1).removeprefix('argument ')}: invalid choice '{m.group(2)}'"
    listed = f"{short}; choose from {', '.join(choices)}"
    return listed if len(listed) <= 70 else short


#: API parameters that a command passes from an option of another name: command -> {API
#: parameter: the option's dest}. Any other parameter named like an option's dest is that
#: option (``raw_days`` is ``--raw-days``).
OPTION_OF = {
    "workorders": {"horizon_days": "window_days"},
    "power plan": {"horizon_days": "window_days"},
    "calibration schedule": {"horizon_days": "window_days"},
    "network plan": {"rssi_floor_dbm": "rssi_floor", "pinned": "pin"},
    "network frontier": {"n_points": "points", "rssi_floor_dbm": "rssi_floor", "pinned": "pin"},
    "serve": {"batch_delay_s": "batch_delay"},
}


def as_options(message: str, parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """An InvalidParameter's message with the API's parameter names (``horizon_days must
    be >= 0``) as the options of ``parser``'s command, spelled as ``argv`` gave them
    (``--window-days must be >= 0``). A name with ``_`` is replaced wherever it stands; a
    plain word (``limit``, ``since``) only where it names a value: before "must", "=" or a
    comparison, after "after"/"before" ("until must be after since"), or as "in NAME:"
    ("unknown device ids in pinned: x")."""
    import re

    actions = [a for a in parser._actions if a.option_strings and a.help]
    # an option's hidden aliases (help=SUPPRESS, an earlier spelling) share its dest
    options = {a.dest: a for a in actions if a.help != argparse.SUPPRESS}
    spellings = {dest: [o for a in actions if a.dest == dest for o in a.option_strings]
                 for dest in options}
    command = parser.prog.removeprefix("tsfleet").strip()
    names = {dest: dest for dest in options} | OPTION_OF.get(command, {})
    for name, dest in sorted(names.items(), key=lambda kv: -len(kv[0])):
        if dest not in options:
            continue
        flag = _typed(options[dest], argv, spellings[dest])
        if "_" in name:
            pattern = rf"(?<![\w-]){name}(?![\w-])"
        else:
            pattern = (rf"(?<![\w-]){name}(?=\s+must\b|=|\s*[<>]=?\s)|"
                       rf"(?:(?<=\bafter )|(?<=\bbefore )){name}(?![\w-])|"
                       rf"(?<=\bin ){name}(?=:)")
        message = re.sub(pattern, flag, message)
    return message


def _typed(action: argparse.Action, argv: Sequence[str],
           spellings: Sequence[str] | None = None) -> str:
    """The option string of ``action`` (or of its hidden aliases, ``spellings``) that
    ``argv`` used (an abbreviation given as ``--window`` names ``--window-days``), else
    its first long one."""
    longs = [o for o in action.option_strings if o.startswith("--")] or action.option_strings
    strings = list(spellings or action.option_strings)
    for word in argv:
        word = word.split("=", 1)[0]
        if word.startswith("--") and len(word) > 2:
            hits = [o for o in strings if o.startswith(word)]
            if word in strings:
                return word
            if len(hits) == 1:
                return hits[0]
    return longs[0]


def _deepest(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of the (sub)command that ``argv`` names, for its error's pointer to help:
    "tsfleet calibration drift --help" lists what that action accepts, the top one does not."""
    at = 0
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        # the first word after the parent's that names one of its commands (an option's
        # value, such as --db's path, names none)
        hit = next((k for k in range(at, len(argv)) if subs and argv[k] in subs[0].choices),
                   None)
        if hit is None:
            return parser
        parser, at = subs[0].choices[argv[hit]], hit + 1


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the package of the command in it is imported (the
    other commands are listed from :data:`COMMANDS`)."""
    p = Parser(prog="tsfleet", description="Monitoring backend for IoT fleets.")
    p.add_argument("--db", dest="db", metavar="PATH", default=None,
                   help="DuckDB store (default: $TSFLEET_DB or fleet.duckdb); also accepted "
                        "after any command")
    p.add_argument("--version", action=_Version, help="print tsfleet's version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="simulate a fleet into a demo store and print what "
                                    "tsfleet finds")
    d.add_argument("--devices", type=int, default=400, help="devices to simulate (>= 10)")
    d.add_argument("--days", type=int, default=60, help="days of history (>= 2)")
    d.add_argument("--seed", type=int, default=7, help="random seed (same seed, same fleet)")
    d.add_argument("--db", dest="sub_db", metavar="PATH", default=argparse.SUPPRESS,
                   help=f"demo store to (re)create (default {DEMO_DB}); never replaces a "
                        "store that is not a demo")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("ingest", help="ingest files, directories or globs of one kind")
    i.add_argument("kind", nargs="?",
                   help="readings, devices, gateways, metrics, ... (see schemas/)")
    i.add_argument("files", nargs="*", metavar="PATH",
                   help="files (.parquet .csv .tsv .jsonl .ndjson .json), directories "
                        "(searched recursively) or quoted globs")
    i.add_argument("--retry-quarantine", action="store_true",
                   help="re-ingest quarantined readings whose metric is declared now, "
                        "or declared anew since they were out of its range")
    i.add_argument("--unknown-devices", choices=("accept", "quarantine"), default="accept",
                   help="readings of devices not in the registry: keep them or quarantine "
                        "them (default accept)")
    i.add_argument("-v", "--verbose", action="store_true", help="one line per file")
    add_db(i).set_defaults(func=cmd_ingest)

    s = sub.add_parser("sql", help="run a SQL query against the store (rows are streamed)")
    s.add_argument("query", help="one SQL statement")
    add_db(add_format(s)).set_defaults(func=cmd_sql)

    n = sub.add_parser("info", help="row counts, schema version and time range")
    add_db(n).set_defaults(func=cmd_info)

    wanted = _command_in(argv)
    load = set(COMMAND_PACKAGES) if argv is None else (
        {COMMANDS[wanted][0]} if wanted in COMMANDS else set())
    for name, (package, help_) in COMMANDS.items():
        if package in load:
            importlib.import_module(f"tsfleet.{package}.cli").register(sub)
            load.discard(package)
        elif name not in sub.choices:
            sub.add_parser(name, help=help_)
    _db_everywhere(sub)
    return p


def _command_in(argv: Sequence[str] | None) -> str | None:
    """The command word of ``argv`` (after the global options), if any."""
    args = list(argv or [])
    while args:
        word = args.pop(0)
        if word == "--db":
            args[:1] = []
        elif not word.startswith("-"):
            return word
    return None


def _db_everywhere(sub: argparse._SubParsersAction) -> None:
    """``--db`` on every command and action that does not declare it itself."""
    for parser in set(sub.choices.values()):
        if not any("--db" in a.option_strings for a in parser._actions):
            add_db(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _db_everywhere(action)


def cmd_demo(args: argparse.Namespace) -> int:
    import duckdb

    from tsfleet.errors import InvalidParameter
    from tsfleet.fleet import Fleet
    from tsfleet.simulate import SimConfig, simulate

    for option, value, low in (("--devices", args.devices, 10), ("--days", args.days, 2),
                               ("--seed", args.seed, 0)):
        if value < low:     # named as the option, as --seed was (the API says "devices")
            raise InvalidParameter(f"{option} must be a whole number >= {low}, got {value}")
    config = SimConfig(n_devices=args.devices, days=args.days, seed=args.seed)  # validates
    path = Path(getattr(args, "sub_db", None) or args.db or DEMO_DB)
    if path.exists():
        check_store(str(path))
        with duckdb.connect(str(path), read_only=True) as con:
            is_demo = con.execute("select count(*) from information_schema.schemata "
                                  "where schema_name = 'sim'").fetchall()[0][0]
        if not is_demo:
            raise StoreError(f"{path} exists and is not a demo store; choose another --db")
    try:        # its folder now, as snapshot and serve do: not after minutes of simulation
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of {path}: "
                         f"{(exc.strerror or str(exc)).lower()}") from None
    t0 = time.perf_counter()
    progress(f"simulating {plural(args.devices, 'device')} x {plural(args.days, 'day')} "
             f"(seed {args.seed}) ...")
    sim = simulate(config)
    if path.exists():
        path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
    progress(f"ingesting {plural(sim.n_readings, 'reading')} into {path} ...")
    failed = []
    with Fleet(str(path)) as fleet:
        sim.write(fleet, progress=True)
        n = fleet.query("select (select count(*) from readings) as r, "
                        "(select count(*) from devices) as d, "
                        "(select count(*) from gateways) as g")[0]
        print(f"tsfleet demo: {path}")
        print(f"  stored {plural(n['r'], 'reading')} from {plural(n['d'], 'device')} and "
              f"{plural(n['g'], 'gateway')} in {time.perf_counter() - t0:.0f} s")
        q = fleet.query("select sum(n_duplicates) as d, sum(n_quarantined) as q "
                        "from ingest_batches")[0]
        print(f"  absorbed {plural(q['d'] or 0, 'duplicate reading')}; "
              f"quarantined {plural(q['q'] or 0, 'row')}")
        from tsfleet.domain import DOMAINS  # the registry, in run order

        for name in (d.name for d in DOMAINS):
            progress(f"analysing {name} ...")
            run = fleet.analyze(only=name, force=True)[0]   # recorded in analysis_runs
            if run.status != "ok":
                failed.append(name)
                print(f"  {name}: analysis failed: {run.error}")
                continue
            for line in getattr(fleet, name).summary():
                _say(f"{name}: {line}")
        if "alerts" not in failed:
            _say(_plan_line(fleet))
    print(f"  explore: tsfleet --db {path} workorders")
    print(f"           tsfleet --db {path} sql \"select * from fleet_overview\"")
    if failed:
        raise TsfleetError(f"analysis failed: {', '.join(failed)} (see the freshness view)")
    return 0


def _say(line: str) -> None:
    """A demo line, indented and wrapped to 120 columns (continuations indented further)."""
    print_sentences([line], indent="  ", hang=4)


def _plan_line(fleet) -> str:
    """The one maintenance plan in a line: its instant, visits, items, overdue items."""
    from tsfleet.clock import AsOf, as_of

    n = fleet.query("select min(o.computed_at) as at, count(distinct o.workorder_id) as v, "
                    "count(i.item_id) as n, count(*) filter (where i.due_at < o.computed_at) "
                    "as late from work_orders o left join work_order_items i "
                    "using (workorder_id)")[0]
    when = as_of(fleet.con)
    when = when if n["at"] in (None, when.at) else AsOf(n["at"], "as planned")
    parts = fleet.query("select domain, count(*) as n from work_order_items "
                        "group by domain order by n desc, domain")
    first = fleet.query("select site, due_at from work_orders order by due_at, site limit 1")
    return (f"plan {when}: {plural(n['v'], 'site visit')}, "
            f"{plural(n['n'], 'item')}, {n['late']:,} overdue"
            + (" (" + ", ".join(f"{p['domain']} {p['n']:,}" for p in parts) + ")" if parts else "")
            + (f"; first: {first[0]['site']} due {first[0]['due_at']:%Y-%m-%d}" if first else ""))


def ingest_paths(specs: Sequence[str]) -> list[Path]:
    """Files named by ``specs``: files as given, directories searched recursively for
    ingestible files, globs expanded (``**`` included). A name matching nothing is an error."""
    out: list[Path] = []
    for spec in specs:
        p, st = Path(spec), _stat(spec)
        if st is not None and stat.S_ISDIR(st.st_mode):
            found = sorted(f for f in p.rglob("*") if f.is_file()
                           and f.name.lower().endswith(INGEST_SUFFIXES))
            if not found:
                raise IngestError(f"no {'/'.join(INGEST_SUFFIXES)} files under {spec}")
            out += found
        elif st is not None and not stat.S_ISREG(st.st_mode):
            raise IngestError(f"cannot read {spec}: not a regular file")   # /dev/null, a FIFO
        elif st is not None or not glob.has_magic(spec):
            out.append(p)  # a missing plain name is reported by the ingest itself
        else:
            found = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            if not found:
                raise IngestError(f"no files match {spec}")
            out += found
    return out


def _stat(spec: str) -> os.stat_result | None:
    """What ``spec`` names (None: nothing); a name the system refuses (too long, a folder
    that may not be searched) is a one-line error."""
    try:
        return os.stat(spec)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        shown = spec if len(spec) <= 80 else f"{spec[:50]}…{spec[-20:]}"
        raise IngestError(f"cannot read {shown}: {(exc.strerror or str(exc)).lower()}") \
            from None


def ingest_line(report) -> str:
    """An ingest report in one line, with plurals right."""
    reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(report.quarantined_by_reason.items()))
    return (f"{report.kind} from {report.source}: {plural(report.n_rows, 'row')}, "
            f"{report.n_accepted:,} accepted, {plural(report.n_duplicates, 'duplicate')}, "
            f"{report.n_quarantined:,} quarantined" + (f" ({reasons})" if reasons else ""))


def _shown(args: argparse.Namespace, path: Path) -> str:
    """A file as the caller named it (relative to its directory when it gave it so)."""
    text, cwd = str(path), getattr(args, "caller_cwd", None)
    if cwd and text.startswith(cwd.rstrip(os.sep) + os.sep):
        return text[len(cwd.rstrip(os.sep)) + 1:]
    return text


def cmd_ingest(args: argparse.Namespace) -> int:
    from tsfleet.errors import InvalidParameter
    from tsfleet.ingest import IngestReport

    if not args.retry_quarantine and not (args.kind and args.files):
        raise InvalidParameter("tsfleet ingest needs a kind and at least one file, "
                               "or --retry-quarantine")
    files = ingest_paths(args.files) if args.files else []
    total = IngestReport(args.kind or "readings", _shown(args, files[0]) if len(files) == 1 else
                         plural(len(files), "file"))
    t0 = last = time.perf_counter()
    refused: list[str] = []
    with open_fleet(args, create=True) as fleet:
        for k, f in enumerate(files, 1):
            try:
                report = fleet.ingest(args.kind, str(f), unknown_devices=args.unknown_devices,
                                      label=_shown(args, f))
            except IngestError as exc:
                if len(files) == 1:
                    raise
                # one file that cannot be read (its header, its columns, a corrupt Parquet
                # footer) is refused whole, named, and the others are still ingested
                refused.append(_shown(args, f))
                print_sentences([f"refused: {exc}"], file=sys.stderr)
                continue
            total.add(report)
            if args.verbose:
                print_sentences([ingest_line(report)])
            retried = fleet.metrics.last_retry if args.kind == "metrics" else None
            if retried is not None and retried.n_rows:   # declared: what waited came in
                print_sentences([ingest_line(retried)])
            now = time.perf_counter()
            if now - t0 > PROGRESS_AFTER_S and now - last > 1.0 and k < len(files):
                last = now
                status_line(f"ingest: {k:,}/{len(files):,} files, "
                            f"{plural(total.n_rows, 'row')}, {total.n_accepted:,} accepted")
        if last != t0 and sys.stderr.isatty():
            print(file=sys.stderr)
        if args.retry_quarantine:
            print_sentences([ingest_line(fleet.metrics.retry_quarantine())])
    if not files:
        return 0
    if len(files) > 1 or not args.verbose:
        print_sentences([ingest_line(total)])
    if refused:
        rest = len(files) - len(refused)
        raise IngestError(f"{len(refused)} of {plural(len(files), 'file')} refused (named above); "
                          + ("the other was ingested" if rest == 1 else
                             "the others were ingested" if rest else "none was ingested"))
    if not (total.n_accepted or total.n_duplicates):
        what = (f"{plural(total.n_rows, 'row')} read, all quarantined (see the quarantine "
                "table)" if total.n_rows else "the input holds no rows")
        raise IngestError(f"nothing was accepted as {args.kind}: {what}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    with open_fleet(args, read_only=True) as fleet:
        try:
            n = len(fleet.con.extract_statements(args.query))
            if n != 1:   # DuckDB would run them all and show the last one's rows
                raise InvalidParameter("tsfleet sql runs one SQL statement, got "
                                       + ("none" if not n else f"{n}; give them one at a time"))
            if SERVED.get() is not None:  # a cursor of serve's store, which may write
                SERVED.get().check_sql(fleet.con, args.query)
            rel = fleet.con.sql(args.query)
            if rel is None:  # a statement without rows
                return 0
            stream_rows(rel.to_arrow_reader(10_000), rel.columns, args.format,
                        wide=args.wide)
        except duckdb.Error as exc:
            raise sql_error(exc) from exc
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with open_fleet(args, read_only=True) as fleet:
        info = fleet.info()
    print(f"store               {info['path']}")
    print(f"schema version      {info['schema_version']}")
    for end in ("from", "to"):
        at = info[f"readings_{end}"]
        print(f"readings {end:<11}{f'{cell(at)} UTC' if at else '(no readings)'}")
    for table, n in info["rows"].items():
        print(f"{table:<20}{n:,}")
    return 0


#: Options and arguments that name files or folders: taken from the caller's working
#: directory when ``tsfleet serve`` runs a command line for another process.
PATH_DESTS = ("files", "out", "directory", "source", "rules")


def _from_cwd(args: argparse.Namespace, cwd: str) -> None:
    args.caller_cwd = cwd
    for dest in PATH_DESTS:
        value = getattr(args, dest, None)
        if isinstance(value, str):
            setattr(args, dest, os.path.join(cwd, value))
        elif isinstance(value, list):
            setattr(args, dest, [os.path.join(cwd, v) if isinstance(v, str) else v
                                 for v in value])


def main(argv: Sequence[str] | None = None, *, cwd: str | None = None) -> int:
    """Run one command line; ``cwd``: the directory its relative paths are in (default
    this process's; serve's control interface passes the caller's)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    parser.check_leading_options(argv)
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "files", None) is not None and not any(
            e.startswith("-") for e in extra):
        args.files += extra  # ingest KIND PATH -v PATH...: paths after an option
    elif extra:
        _deepest(parser, argv).error(f"unrecognized arguments: {' '.join(extra)}")
    if cwd is not None:
        _from_cwd(args, cwd)
    args.run_command = main  # serve's control interface runs command lines with it
    import duckdb

    try:
        try:
            return args.func(args)
        except ServedElsewhere as exc:  # serve holds the store: run the command there
            from tsfleet.remote import forward
            return forward(exc.advert, argv)
    except BrokenPipeError:
        quiet_broken_pipe()
        return 0
    except InvalidParameter as exc:   # the API's parameter names, as options typed here
        print(f"tsfleet: error: {as_options(str(exc), _deepest(parser, argv), argv)}",
              file=sys.stderr)
        return 2
    except TsfleetError as exc:
        print(f"tsfleet: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"tsfleet: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder the system refused, not foreseen above
        what = ((exc.strerror or "").lower() or next(iter(str(exc).splitlines()), "")
                or type(exc).__name__)
        print(f"tsfleet: error: {what}" + (f": {exc.filename}" if exc.filename else ""),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tsfleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
