"""What every ``tsfleet`` sub-command shares: the ``--db`` and ``--format`` options,
opening the store, rendering rows, plurals and progress lines.

``tsfleet.cli`` and every ``tsfleet.<pkg>.cli`` import this module; it imports no
command module and no domain, so nothing reaches back into ``tsfleet.cli``. It is
light on purpose (no pandas, no statsmodels) so that ``tsfleet --help`` stays fast.

>>> print(format_rows([{"device_id": "px-1", "level_pct": 12.3456}]))
device_id  level_pct
---------  ---------
px-1       12.3
"""

from __future__ import annotations

import argparse
import contextvars
import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from tsfleet.errors import InvalidParameter, StoreError
from tsfleet.rows import Rows, columns_of

FORMATS = ("table", "csv", "json")
#: Columns of a terminal table unless ``--wide``.
TABLE_WIDTH = 120
_DB_HELP = "DuckDB store (default: $TSFLEET_DB or fleet.duckdb)"
_DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file


# -- options ---------------------------------------------------------------------------
def add_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--db PATH`` on ``parser``; accepted at every level of the command line.

    A level that is not given leaves the value of an outer level alone (SUPPRESS), so
    ``tsfleet --db X alerts list``, ``tsfleet alerts --db X list`` and
    ``tsfleet alerts list --db X`` mean the same.
    """
    parser.add_argument("--db", dest="sub_db", metavar="PATH", default=argparse.SUPPRESS,
                        help=_DB_HELP)
    return parser


def add_format(parser: argparse.ArgumentParser, choices: tuple[str, ...] = FORMATS,
               default: str = "table") -> argparse.ArgumentParser:
    """``--format`` (and ``--wide`` when a table is one of the choices)."""
    parser.add_argument("--format", choices=choices, default=default,
                        help=f"output format (default {default})")
    if "table" in choices:
        parser.add_argument("--wide", action="store_true",
                            help=f"do not fit tables to {TABLE_WIDTH} columns")
    return parser


def add_as_of(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--as-of``: the one instant a plan is computed for."""
    parser.add_argument("--as-of", default=None, metavar="TIME",
                        help="plan as of this UTC time, ISO: a preview, printed and not stored "
                             "(default: the store's own instant, now for a live store, the end "
                             "of the data for a historical one; that plan is stored)")
    return parser


def parse_time(text: str | None, option: str = "--as-of") -> datetime | None:
    """An ISO time (``2026-07-30``, ``2026-07-30T12:00Z``) as naive UTC, or None."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter(f"{option} must be an ISO time like 2026-06-01T12:00, "
                               f"got {text!r}") from exc
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    from tsfleet.ingest.rules import TS_MAX, TS_MIN

    if not datetime.fromisoformat(TS_MIN) <= t < datetime.fromisoformat(TS_MAX):
        # outside the times a store can hold (a plan as of 1890 was built from data in its
        # future)
        raise InvalidParameter(f"{option} must be within {TS_MIN}..{TS_MAX} (the times a store "
                               f"holds), got {text!r}")
    return t


def positive_number(text: str) -> float:
    """The type of an option that takes a finite number above 0 (seconds of a timeout):
    argparse makes anything else a one-line error naming the option.

    >>> positive_number("2.5")
    2.5
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def whole_number_from(low: int):
    """The type of an option that takes a whole number of at least ``low``."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}, got {text!r}")
        return value
    return check


#: Days within a visit's first item that other items of the site join it, the same for
#: every view of the one plan (workorders, power plan, calibration schedule).
WINDOW_DAYS = 30.0


def add_window(parser: argparse.ArgumentParser, *hidden: str) -> None:
    """``--window-days``: how a plan batches a site's items into visits, the one name on
    every view of the plan; ``hidden``: earlier spellings of it on this command, still
    accepted (:func:`add_hidden_alias`)."""
    parser.add_argument("--window-days", dest="window_days", type=float,
                        default=WINDOW_DAYS, metavar="DAYS",
                        help="items of a site due within this many days of a visit's first "
                             f"join that visit (default {WINDOW_DAYS:g})")
    add_hidden_alias(parser, "--window-days", *hidden)


def add_horizon(parser: argparse.ArgumentParser) -> None:
    """``--horizon-days`` of a view of the plan: only the items due within that many days
    of the plan's instant (:func:`within_horizon`)."""
    parser.add_argument("--horizon-days", type=float, default=None, metavar="DAYS",
                        help="only items due within this many days of the plan's instant "
                             "(default all)")


def check_horizon(args: argparse.Namespace) -> None:
    """A ``--horizon-days`` below 0 (or NaN) is an error, before a plan is made."""
    days = getattr(args, "horizon_days", None)
    if days is not None and not days >= 0:   # NaN too
        raise InvalidParameter(f"--horizon-days must be 0 or more, got {days:g}")


def within_horizon(rows: list[dict], args: argparse.Namespace, at: datetime) -> list[dict]:
    """The rows of a view of the plan due by ``--horizon-days`` after ``at`` (all without
    it)."""
    days = getattr(args, "horizon_days", None)
    if days is None:
        return rows
    end = at + timedelta(days=days)
    return Rows((r for r in rows if r["due_at"] <= end), columns_of(rows))


def add_hidden_alias(parser: argparse.ArgumentParser, option: str, *aliases: str) -> None:
    """``aliases``: earlier spellings of ``option`` of ``parser``, accepted as it is and
    left out of ``--help`` (one name per meaning is shown; a command line that used an
    old name still runs). An error names the spelling typed (tsfleet.cli.as_options)."""
    if not aliases:
        return
    [action] = [a for a in parser._actions if option in a.option_strings]
    parser.add_argument(*aliases, dest=action.dest, type=action.type, metavar=action.metavar,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


@contextmanager
def open_plan(args: argparse.Namespace, *, check=None, lacks=None, fill=None):
    """Open the store for a view of the one plan, planned as of the command line's instant;
    yields ``(fleet, AsOf)``.

    ``--no-plan`` reads the stored plan. ``--as-of`` other than the store's own instant
    (:func:`tsfleet.clock.as_of`) is a preview: computed and printed, stored nowhere (the
    stored plan and its work order ids stay), so the store opens read-only. Otherwise the
    plan is recomputed as of the store's instant and stored, which needs write access.
    ``check(fleet)`` runs first (a typo is an error before a plan is made); when
    ``lacks(fleet)``, ``fill(fleet)`` computes and stores what the plan needs first."""
    from tsfleet.clock import AsOf, as_of

    given = parse_time(getattr(args, "as_of", None))
    stored = getattr(args, "no_plan", False)
    sends = getattr(args, "send", None)
    if sends and given is not None:
        raise InvalidParameter("--send posts the stored plan's work orders; a plan --as-of "
                               "another instant is a preview: drop --as-of or --send")

    def when_stored(fleet) -> AsOf:
        t = fleet.query("select max(computed_at) as t from work_orders")[0]["t"]
        return AsOf(t, "the stored plan") if t else as_of(fleet.con)

    if (stored or given is not None) and not sends:
        with open_fleet(args, read_only=True) as fleet:
            if check:
                check(fleet)
            if stored:
                yield fleet, when_stored(fleet)
                return
            if given != as_of(fleet.con).at and not (lacks and lacks(fleet)):
                with fleet.alerts.preview_work_orders(at=given, horizon_days=args.window_days):
                    yield fleet, AsOf(given, "given", preview=True)
                return
    with open_fleet(args) as fleet:
        if check:
            check(fleet)
        if lacks and lacks(fleet):
            fill(fleet)
        if stored:
            yield fleet, when_stored(fleet)
            return
        own = as_of(fleet.con)
        if given is not None and given != own.at:
            with fleet.alerts.preview_work_orders(at=given, horizon_days=args.window_days):
                yield fleet, AsOf(given, "given", preview=True)
            return
        when = own if given is None else AsOf(given, "given")
        fleet.alerts.plan_work_orders(horizon_days=args.window_days, at=when.at)
        yield fleet, when


def print_plan(rows: list[dict], args: argparse.Namespace, when, what: str) -> None:
    """A view of the plan: a header line with its instant above a table; CSV and JSON
    carry ``as_of`` on every record instead."""
    if args.format == "table":
        n_over = sum(1 for r in rows if r.get("is_overdue") or r.get("n_overdue"))
        visits = len({r["workorder_id"] for r in rows})
        print(f"{what} {when}: {plural(visits, 'visit')}"
              + (f", {n_over} with overdue work" if n_over and "n_overdue" in rows[0]
                 else f", {n_over} overdue" if n_over else "")
              + ("; a preview, not stored" if when.preview else ""))
    print_rows(rows, args)


# -- the store ---------------------------------------------------------------------------
def db_path(args: argparse.Namespace) -> str:
    """The store the command line names (innermost ``--db`` wins)."""
    from tsfleet.fleet import default_db_path

    return getattr(args, "sub_db", None) or getattr(args, "db", None) or default_db_path()


def check_store(path: str) -> None:
    """Raise a one-line StoreError unless ``path`` is an existing DuckDB file."""
    p = Path(path)
    if not p.exists():
        raise StoreError(f"no store at {path} (check --db or $TSFLEET_DB; "
                         "tsfleet ingest or tsfleet demo create one)")
    if not p.is_file():
        raise StoreError(f"{path} is not a DuckDB store (it is a directory)")
    with p.open("rb") as f:
        head = f.read(12)
    if head[8:12] != _DUCKDB_MAGIC:
        raise StoreError(f"{path} is not a DuckDB store (expected a .duckdb file "
                         "written by tsfleet)")


#: Inside ``tsfleet serve`` (its control interface runs commands in-process): the function
#: that hands a command serve's store, ``opener(read_only) -> Fleet``. None elsewhere.
SERVED: contextvars.ContextVar = contextvars.ContextVar("tsfleet_served", default=None)


class ServedElsewhere(StoreError):
    """The store is held by a running ``tsfleet serve``: the command goes through it."""

    def __init__(self, path: str, advert: dict):
        super().__init__(f"the store {path} is held by tsfleet serve (pid {advert['pid']})")
        self.advert = advert


def open_fleet(args: argparse.Namespace, read_only: bool = False, create: bool = False):
    """The Fleet the command line names. Only commands that bring data in (``create``)
    may create a store; every other command refuses a missing or foreign file.

    When ``tsfleet serve`` holds the store, raises :class:`ServedElsewhere` (``main``
    then runs the whole command line in serve, see :mod:`tsfleet.remote`); inside serve,
    hands the command serve's store."""
    from tsfleet.fleet import Fleet

    opener = SERVED.get()
    if opener is not None:
        return opener(read_only)
    path = db_path(args)
    if create:
        if Path(path).exists():
            check_store(path)
    else:
        check_store(path)
    try:
        return Fleet(path, read_only=read_only)
    except StoreError as exc:
        from tsfleet.remote import find_server

        advert = find_server(path)
        if advert is None:
            if read_only and "needs migrations" in str(exc):
                return _upgraded(path, exc)
            raise
        raise ServedElsewhere(path, advert) from None


def _upgraded(path: str, refused: StoreError):
    """A store of an earlier tsfleet, opened by a reading command: apply its pending
    migrations (they only add; tests/foundation/test_migrations.py) and open it read-only,
    saying so on stderr. Where it cannot be opened for writing (another process holds it,
    a read-only file), the refusal stands; a migration that fails says so itself."""
    from tsfleet import store
    from tsfleet.fleet import Fleet

    try:
        con = store.connect(path)
    except StoreError:
        raise refused from None
    try:
        applied = store.migrate(con)
    finally:
        con.close()
    progress(f"tsfleet: upgraded {path} to this version's schema "
             f"({plural(len(applied), 'migration')} applied)")
    return Fleet(path, read_only=True)


# -- words -----------------------------------------------------------------------------
from tsfleet.words import plural  # noqa: E402 - re-exported: the CLI modules import it here


def print_sentences(lines: Iterable[str], empty: str = "", indent: str = "",
                    hang: int = 2, file: IO[str] | None = None) -> None:
    """Sentences one after another, each wrapped to ``TABLE_WIDTH`` columns after
    ``indent``, its continuation lines ``hang`` spaces further in (``empty`` when there are
    none), on ``file`` (default stdout)."""
    import textwrap

    out = [textwrap.fill(line, width=TABLE_WIDTH, initial_indent=indent,
                         subsequent_indent=indent + " " * hang, break_on_hyphens=False,
                         break_long_words=False) for line in lines]
    if out or empty:
        print("\n".join(out) or empty, file=file or sys.stdout, flush=file is not None)


def progress(message: str) -> None:
    """One line on stderr (never mixed into the output a pipe reads)."""
    print(message, file=sys.stderr, flush=True)


def status_line(message: str) -> None:
    """A progress line that rewrites itself on a terminal (plain lines elsewhere)."""
    if sys.stderr.isatty():
        print(f"\r{message}\x1b[K", end="", file=sys.stderr, flush=True)
    else:
        progress(message)


# -- values ------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(text: str) -> str:
    """Control characters as visible escapes: a device id can never move the cursor."""
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
        m.group(), f"\\x{ord(m.group()):02x}"), text)


def _digits(name: str) -> int | None:
    """Decimals a float column deserves, from its name (None: 3 significant digits)."""
    n = name.lower()
    if n.endswith("_per_c"):            # a coefficient per degree, not a temperature
        return None
    if n.endswith(("_pct", "_c", "_pct_per_day", "_per_day", "_dbm")) or "days" in n:
        return 1
    if n.endswith("_v"):                # a battery's charge shows in millivolts
        return 3
    if n.endswith(("_ratio", "utilization")):
        return 2
    return None


def round_float(v: float, name: str = "") -> str:
    """A float as text rounded to what it means: percent and days to 0.1, volts to 0.001,
    anything else to 3 significant digits (no exponent above 0.001). Trailing zeros are
    dropped only where the value is exact at that precision (float noise aside): a value
    rounded to 3 digits shows 3 (1.995 is "2.00", not the exact-looking "2").

    >>> [round_float(v, n) for v, n in ((1.995, "battery_voltage_v"), (1.9949999999, "supply_v"),
    ...                                 (0.0117524, "temp_coef_per_c"), (21.04, "temperature_c"))]
    ['1.995', '1.995', '0.0118', '21.0']
    >>> [round_float(v) for v in (1.995, 0.3897, 2.5, 60.000000000001, 44.800000000000004)]
    ['2.00', '0.390', '2.5', '60', '44.8']
    """
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    d = _digits(name)
    if d is not None:
        text = f"{v:.{d}f}"
    elif abs(v) >= 1e15:                # beyond what a count or a sum means digit by digit
        text = f"{v:.3g}"
    elif v == 0 or abs(v) >= 100:
        text = f"{v:.0f}"
    elif abs(v) >= 0.001:
        text = f"{v:.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"
        if "." in text and math.isclose(float(text), v, rel_tol=1e-9):
            text = text.rstrip("0").rstrip(".")
    else:
        text = f"{v:.2g}"
    return "0" if text in ("-0", "-0.0", "-0.00") else text


def cell(v: object, name: str = "") -> str:
    """One value as table text: rounded, minutes for times, escaped."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if (iso := _interval(v)) is not None:
        return iso
    if isinstance(v, (float, Decimal)):
        return round_float(float(v), name)
    if isinstance(v, datetime):
        if v.hour == v.minute == v.second == v.microsecond == 0 and name.endswith("_on"):
            return v.date().isoformat()
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, timedelta):
        return f"{v.total_seconds() / 86400:.1f}d"
    if isinstance(v, (list, tuple, dict)):
        return _escape(json.dumps(v, default=json_default, separators=(",", ":")))
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalar
        return cell(v.item(), name)
    return _escape(str(v))


#: Columns the store keeps as JSON text (an alert's labels and annotations, a result's
#: parameters): a JSON output carries them as objects, not as text inside a string.
JSON_TEXT = ("labels", "annotations", "params")


def json_objects(v: object) -> object:
    """``v`` (a record, a list of them, or a card of sections) with its JSON-text columns
    (:data:`JSON_TEXT`) as the objects they hold.

    >>> json_objects([{"rule": "R", "labels": '{"site": "a"}'}])
    [{'rule': 'R', 'labels': {'site': 'a'}}]
    """
    if isinstance(v, list):
        return [json_objects(x) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if k in JSON_TEXT and isinstance(x, str):
            try:
                x = json.loads(x)
            except ValueError:
                pass                # not JSON after all: the text as it is
        out[k] = json_objects(x) if isinstance(x, (list, dict)) and k not in JSON_TEXT else x
    return out


def utc_iso(t: datetime) -> str:
    """A time as ISO 8601 with its offset, ``Z`` (UTC): the one form of a time in JSON and
    CSV output. The store's times are naive UTC, and a time printed without an offset
    reads as local time; an aware time is converted to UTC first.

    >>> utc_iso(datetime(2026, 7, 30, 23, 36, 34)), utc_iso(datetime(2026, 7, 30, 0, 0, 0, 5))
    ('2026-07-30T23:36:34Z', '2026-07-30T00:00:00.000005Z')
    """
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t.isoformat() + "Z"


def json_default(v: object) -> object:
    """JSON for what ``json`` does not know: times as ISO 8601 in UTC with ``Z``
    (:func:`utc_iso`), days as ISO dates, numpy scalars and arrays."""
    if isinstance(v, datetime):
        return utc_iso(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, timedelta):
        return v.total_seconds()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def iso_duration(months: int, days: int, nanoseconds: int) -> str:
    """An interval (SQL's months, days and nanoseconds) as ISO 8601, e.g. ``P1DT2H30M``.

    >>> iso_duration(0, 0, 10_800 * 10**9), iso_duration(14, 1, 90 * 10**9), iso_duration(0, 0, 0)
    ('PT3H', 'P1Y2M1DT1M30S', 'PT0S')
    """
    sign = "-" if min(months, days, nanoseconds) < 0 and max(months, days, nanoseconds) <= 0 \
        else ""
    months, days, nanoseconds = abs(months), abs(days), abs(nanoseconds)
    secs, frac = divmod(nanoseconds, 10**9)
    h, rest = divmod(secs, 3600)
    m, sec = divmod(rest, 60)
    date_part = "".join(f"{n}{u}" for n, u in ((months // 12, "Y"), (months % 12, "M"),
                                                (days, "D")) if n)
    seconds = f"{sec}.{frac:09d}".rstrip("0") + "S" if frac else (f"{sec}S" if sec else "")
    time_part = "".join(f"{n}{u}" for n, u in ((h, "H"), (m, "M")) if n) + seconds
    if not (date_part or time_part):
        time_part = "0S"
    return sign + "P" + date_part + ("T" + time_part if time_part else "")


def _interval(v: object) -> str | None:
    """A SQL interval as Arrow hands it over (a MonthDayNano triple), as ISO 8601."""
    if type(v).__name__ == "MonthDayNano":
        return iso_duration(*v)
    return None


def plain(v: object) -> object:
    """One value for JSON and CSV: the same record in both (NaN is null)."""
    if (iso := _interval(v)) is not None:
        return iso
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, Decimal):
        return float(v)
    return v


def _csv_cell(v: object) -> object:
    v = plain(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"     # as JSON says it, not Python's True
    if isinstance(v, datetime):
        return utc_iso(v)              # as JSON carries it
    if isinstance(v, float):
        return f"{v:.15g}"  # the value JSON carries, without a trailing .0
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=json_default, separators=(",", ":"))
    return v


# -- tables ------------------------------------------------------------------------------
def _fit(cols: list[str], natural: list[int], width: int) -> tuple[list[int], int]:
    """Column widths that fit ``width``: the leading columns that fit at their floor (their
    header, at least 16 characters, a time to the minute, never more than they need) are
    kept, then the widest are shrunk first. Returns the widths and the number of leading
    columns shown."""
    floor = [min(w, max(16, len(c))) for c, w in zip(cols, natural, strict=True)]
    shown = len(cols)
    while shown > 1 and sum(floor[:shown]) + 2 * (shown - 1) > width:
        shown -= 1
    widths = natural[:shown]
    over = sum(widths) + 2 * (shown - 1) - width
    while over > 0:
        i = max(range(shown), key=lambda j: widths[j] - floor[j])
        cut = min(over, widths[i] - floor[i], max(1, (widths[i] - floor[i] + 1) // 2))
        if cut <= 0:
            break
        widths[i] -= cut
        over -= cut
    return widths, shown


def named(row: dict, column: str) -> str:
    """The name that says what ``row[column]`` means, for rounding it: a ``value`` beside
    a ``metric`` is that metric's (``battery_voltage_v``: volts), any other column its own.
    """
    metric = row.get("metric") if column == "value" else None
    return metric if isinstance(metric, str) else column


#: Free-text columns, shown last in a table so that the short columns stay in view.
TEXT_COLUMNS = ("summary", "detail", "reason", "reasons", "description", "labels", "params")


def _text_last(cols: list[str]) -> list[str]:
    return [c for c in cols if c not in TEXT_COLUMNS] + [c for c in cols if c in TEXT_COLUMNS]


def clip(text: str, w: int) -> str:
    """``text`` cut to ``w`` columns, its last one "…" when it was cut (never silently).

    >>> clip("abcdef", 4), clip("abc", 4)
    ('abc…', 'abc')
    """
    return text if len(text) <= w else text[: max(w - 1, 0)] + "…"


class Table:
    """An aligned text table whose widths come from the first rows it sees."""

    def __init__(self, cols: list[str], sample: list[list[str]], wide: bool = False,
                 width: int = TABLE_WIDTH):
        self.cols = cols
        natural = [max(len(c), *(len(r[i]) for r in sample)) if sample else len(c)
                   for i, c in enumerate(cols)]
        if wide:
            self.widths, self.shown = natural, len(cols)
        else:
            self.widths, self.shown = _fit(cols, natural, width)

    def line(self, values: list[str]) -> str:
        return "  ".join(clip(v, w).ljust(w) for v, w in
                         zip(values[: self.shown], self.widths, strict=False)).rstrip()

    def header(self) -> list[str]:
        return [self.line(self.cols), self.line(["-" * w for w in self.widths])]

    def footer(self) -> str | None:
        hidden = len(self.cols) - self.shown
        if hidden <= 0:
            return None
        text = (f"({plural(hidden, 'more column')}: {', '.join(self.cols[self.shown:])}; "
                "see --wide or --format json)")
        if len(text) > TABLE_WIDTH:
            text = f"({plural(hidden, 'more column')}; see --wide or --format json)"
        return text


#: The last line of a table that shows a time (a table's times are UTC to the minute).
UTC_NOTE = "(times are UTC)"
#: The line under a table that shows dates and no time: a day is a UTC day.
UTC_DATES_NOTE = "(dates are UTC days)"


def _shows_time(rows: Iterable[dict], cols: list[str]) -> bool:
    return any(isinstance(r.get(c), datetime) for r in rows for c in cols)


def utc_line(rows: list[dict], cols: list[str]) -> str | None:
    """The line saying how the shown times or dates are meant: :data:`UTC_NOTE` where a
    time is shown, :data:`UTC_DATES_NOTE` where only dates are (a due date is a UTC
    day), else None.

    >>> from datetime import date
    >>> utc_line([{"due": date(2026, 7, 30)}], ["due"]), utc_line([{"n": 1}], ["n"])
    ('(dates are UTC days)', None)
    """
    if _shows_time(rows, cols):
        return UTC_NOTE
    if any(isinstance(r.get(c), date) for r in rows for c in cols):
        return UTC_DATES_NOTE
    return None


def format_rows(rows: list[dict], fmt: str = "table", *, wide: bool = False,
                width: int = TABLE_WIDTH, utc_note: bool = True) -> str:
    """Rows as a table fitted to ``width`` columns, as CSV, or as a JSON array.

    CSV and JSON carry the same records at full precision; a table rounds every number
    to what it means and escapes control characters, and says below it that its times
    are UTC, or its dates UTC days where no time is shown (:func:`utc_line`; not with
    ``utc_note=False``, for a page that says it once).
    A CSV of no rows is its header line where ``rows`` knows its columns
    (:class:`tsfleet.rows.Rows`, which ``Fleet.query`` returns).
    """
    if fmt == "json":
        return json.dumps([{k: plain(v) for k, v in r.items()} for r in rows],
                          default=json_default, indent=2)
    if fmt == "csv":        # no row: the header alone, where the rows know their columns
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns_of(rows), lineterminator="\n")
        w.writeheader()
        w.writerows({k: _csv_cell(v) for k, v in r.items()} for r in rows)
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise InvalidParameter(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not rows:
        return "(no rows)"
    cols = _text_last(list(rows[0]))
    cells = [[cell(r.get(c), named(r, c)) for c in cols] for r in rows]
    t = Table(cols, cells, wide=wide, width=width)
    lines = t.header() + [t.line(r) for r in cells]
    foot = t.footer()
    note = utc_note and utc_line(rows, cols[: t.shown])
    return "\n".join(lines + ([foot] if foot else []) + ([note] if note else []))


#: ``--format`` of a command that runs an analysis and reports on it: its summary as
#: sentences (``text``, the default), or its key figures as one record: a table of figure
#: and value, a CSV header and row, a JSON object.
SUMMARY_FORMATS = ("text", "table", "csv", "json")


def add_summary_format(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--format`` of :data:`SUMMARY_FORMATS` (and ``--wide``, as for a listing)."""
    parser.add_argument("--format", choices=SUMMARY_FORMATS, default="text",
                        help="text: the summary as sentences (default); table, csv or json: "
                             "its key figures as one record")
    parser.add_argument("--wide", action="store_true",
                        help=f"do not fit the table to {TABLE_WIDTH} columns")
    return parser


def print_summary(args: argparse.Namespace, lines, figures) -> None:
    """What an analysis found, in the format the command line asks for: ``lines()`` (the
    sentences) for ``text``, else ``figures()`` (one record)."""
    if args.format == "text":
        print_sentences(lines())
        return
    record = figures()
    if args.format == "json":
        print(json.dumps({k: plain(v) for k, v in record.items()}, default=json_default,
                         indent=2))
    elif args.format == "csv":
        print(format_rows([record], "csv"))
    else:
        print(format_rows([{"figure": k, "value": cell(v, k)} for k, v in record.items()],
                          wide=args.wide))
        note = utc_line([record], list(record))     # the values were printed as text
        if note:
            print(note)


def print_rows(rows: list[dict], args: argparse.Namespace, fmt: str | None = None) -> None:
    """Print ``rows`` in the format and width the command line asks for."""
    print(format_rows(rows, fmt or getattr(args, "format", "table"),
                      wide=getattr(args, "wide", False)))


def stream_rows(batches: Iterable[Any], cols: list[str], fmt: str, out: IO[str] | None = None,
                *, wide: bool = False, sample_rows: int = 1000) -> int:
    """Write Arrow record batches as they come (memory bounded by one batch); returns
    the number of rows. Table widths come from the first ``sample_rows`` rows."""
    out = out or sys.stdout
    n = 0
    it = iter(batches)
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for b in it:
            for r in b.to_pylist():
                w.writerow([_csv_cell(r[c]) for c in cols])
            n += b.num_rows
        return n
    if fmt == "json":
        out.write("[")
        for b in it:
            for r in b.to_pylist():
                out.write(("\n  " if n == 0 else ",\n  ")
                          + json.dumps({c: plain(r[c]) for c in cols}, default=json_default))
                n += 1
        out.write("\n]\n" if n else "]\n")
        return n
    sample: list[dict] = []
    pending: Iterator = iter(())
    for b in it:
        sample.extend(b.to_pylist())
        if len(sample) >= sample_rows:
            break
    if not sample:
        out.write("(no rows)\n")
        return 0
    cols = _text_last(cols)
    t = Table(cols, [[cell(r[c], named(r, c)) for c in cols] for r in sample], wide=wide)
    out.write("\n".join(t.header()) + "\n")

    def rows() -> Iterator[dict]:
        yield from sample
        for b in it:
            yield from b.to_pylist()

    pending = rows()
    for r in pending:
        out.write(t.line([cell(r[c], named(r, c)) for c in cols]) + "\n")
        n += 1
    foot = t.footer()
    if foot:
        out.write(foot + "\n")
    note = utc_line(sample, cols[: t.shown])
    if note:
        out.write(note + "\n")
    return n


def quiet_broken_pipe() -> None:
    """After a reader closed the pipe (``| head``): point stdout at /dev/null so that
    the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a descriptor
        pass
