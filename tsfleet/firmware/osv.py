"""OSV vulnerability records: reading a feed, checking each record, and
deciding whether a version is affected, exactly as the OSV schema's evaluation
algorithm says (``IsVulnerable`` in the schema's "Evaluation" section).

Each ``affected[].package`` (name and ecosystem) is mapped to fleet models by
:mod:`tsfleet.firmware.osv_packages`. ``ECOSYSTEM`` ranges are judged with the
model's own version scheme, ``SEMVER`` ranges with SemVer (build metadata
ignored); a ``GIT`` range needs the repository's commit graph, so it is skipped
with a note on the advisory while the record's other ranges and its
``versions`` list are still judged.

>>> from tsfleet.firmware.versions import get_scheme
>>> rng = Range("ECOSYSTEM", (("introduced", "0"), ("fixed", "FW_3_2_1")))
>>> s = get_scheme("underscore")
>>> range_affects(s.parse("FW_3_1_9"), rng, s), range_affects(s.parse("FW_3_2_1"), rng, s)
(True, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tsfleet.errors import InvalidParameter
from tsfleet.firmware.osv_packages import DEFAULT_FEED, PackageMap
from tsfleet.firmware.versions import SCHEMES, Scheme, UnparsableVersion, Version

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
#: Range types judged on firmware versions.
RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
#: Range types of the OSV schema that firmware versions cannot be judged by: skipped, noted.
SKIPPED_RANGE_TYPES = ("GIT",)
#: OSV / GHSA severity words, strongest first, and the CVSS score floor of each.
SEVERITY_FLOOR = {"CRITICAL": 9.0, "HIGH": 7.0, "MODERATE": 4.0, "MEDIUM": 4.0, "LOW": 0.1}

Model = tuple[str, str]


class InvalidAdvisory(InvalidParameter):
    """An OSV record that cannot be evaluated; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Range:
    type: str
    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry: its package, the fleet models it stands for, its
    judged ranges and its explicit versions."""

    ecosystem: str
    package: str
    models: tuple[Model, ...]
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    severity: str
    score: float | None
    published: str | None
    modified: str | None
    aliases: tuple[str, ...]
    affected: tuple[Affected, ...]
    #: What of the record is not judged, and why (GIT ranges, unmapped packages, ...).
    notes: tuple[str, ...] = ()


def convention_targets(ecosystem: str, package: str) -> tuple[Model, ...]:
    """The default package mapping: ``<manufacturer>/<model>``, any ecosystem."""
    return PackageMap(()).targets(DEFAULT_FEED, ecosystem, package)


def read_feed(source: object) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Records of an OSV feed, and the parts that are not records as
    ``(reason, detail, raw)``.

    ``source`` is a path to a ``.json`` file (one record, a list, or
    ``{"vulns": [...]}``) or a folder of them, a JSON string, a dict or a list.
    """
    rejected: list[tuple[str, str, str]] = []
    if isinstance(source, Path) or (isinstance(source, str) and source.lstrip()[:1] not in "[{"):
        path = Path(source)
        if path.is_dir():
            records: list[dict] = []
            for f in sorted(path.glob("*.json")):
                more, bad = read_feed(f)
                records += more
                rejected += bad
            return records, rejected
        if not path.is_file():
            raise InvalidParameter(f"no OSV feed at {path}: expected a .json file or a folder")
        source = path.read_text(encoding="utf-8")
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except json.JSONDecodeError as exc:
            return [], [("invalid_json", f"the OSV feed is not JSON: {exc}", source[:2000])]
    if isinstance(source, Mapping) and "vulns" in source:
        source = source["vulns"]
    if isinstance(source, Mapping):
        source = [source]
    if not isinstance(source, Iterable) or isinstance(source, (str, bytes)):
        raise InvalidParameter(f"an OSV feed must be records, got {type(source).__name__}")
    records = []
    for item in source:
        if isinstance(item, Mapping):
            records.append(dict(item))
        else:
            rejected.append(("not_a_record", f"expected an OSV record (JSON object), got "
                             f"{type(item).__name__}", json.dumps(item, default=str)))
    return records, rejected


def parse_record(record: Mapping, scheme_of: Callable[[str, str], Scheme | None],
                 targets_of: Callable[[str, str], tuple[Model, ...]] = convention_targets
                 ) -> Advisory:
    """Check one OSV record and return it as an :class:`Advisory`.

    ``targets_of(ecosystem, package_name)`` gives the fleet models a package
    stands for (default: ``<manufacturer>/<model>``); ``scheme_of(manufacturer,
    model)`` gives a model's scheme, or None for a model tsfleet does not know
    (its versions are then not checked here). Raises :class:`InvalidAdvisory`
    with a reason code; what is skipped instead of rejected is in ``notes``.
    """
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        raise InvalidAdvisory("missing_id", "an OSV record needs a non-empty string id")
    affected_in = record.get("affected")
    if not isinstance(affected_in, list) or not affected_in:
        raise InvalidAdvisory("no_affected", f"{rid}: affected must be a non-empty list")
    notes: list[str] = []
    affected = tuple(_affected(rid, a, scheme_of, targets_of, notes) for a in affected_in)
    if not any(a.models for a in affected):
        names = ", ".join(sorted({f"{a.package!r} ({a.ecosystem or 'no ecosystem'})"
                                  for a in affected}))
        raise InvalidAdvisory("unmapped_package", f"{rid}: no affected package maps to a fleet "
                              f"model: {names}; map one with `tsfleet firmware osv-map PACKAGE "
                              f"MANUFACTURER MODEL` or name it '<manufacturer>/<model>', then "
                              f"load the feed again")
    severity, score = _severity(record)
    return Advisory(rid, str(record.get("summary") or record.get("details") or "")[:500],
                    severity, score, record.get("published"), record.get("modified"),
                    tuple(str(a) for a in record.get("aliases") or ()), affected, tuple(notes))


def _affected(rid: str, a: object, scheme_of, targets_of, notes: list[str]) -> Affected:
    if not isinstance(a, Mapping):
        raise InvalidAdvisory("bad_package", f"{rid}: an affected entry must be an object, "
                              f"got {a!r}")
    package = a.get("package")
    if package is None:  # allowed by the schema, e.g. beside GIT ranges only: maps to nothing
        name, ecosystem, models = "(no package)", "", ()
    else:
        name = package.get("name") if isinstance(package, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidAdvisory("bad_package", f"{rid}: a package needs a non-empty name, "
                                  f"got {package!r}")
        ecosystem = str(package.get("ecosystem") or "")
        models = tuple(targets_of(ecosystem, name))
    schemes = [(f"{name} ({m[0]} {m[1]})", s) for m in models
               if (s := scheme_of(*m)) is not None]
    ranges, n_git = [], 0
    for r in a.get("ranges") or ():
        rtype = r.get("type") if isinstance(r, Mapping) else None
        if rtype in SKIPPED_RANGE_TYPES:
            n_git += 1
            continue
        if rtype not in RANGE_TYPES:
            raise InvalidAdvisory("unsupported_range_type",
                                  f"{rid}: range type {rtype!r} is not an OSV range type "
                                  f"tsfleet knows; expected one of "
                                  f"{', '.join(RANGE_TYPES + SKIPPED_RANGE_TYPES)}")
        events = []
        for e in r.get("events") or ():
            keys = [k for k in EVENT_KINDS if isinstance(e, Mapping) and k in e]
            if not isinstance(e, Mapping) or len(keys) != 1 or len(e) != 1:
                raise InvalidAdvisory("invalid_event", f"{rid}: an event holds exactly one of "
                                      f"{', '.join(EVENT_KINDS)}, got {e!r}")
            events.append((keys[0], str(e[keys[0]])))
        kinds = {k for k, _ in events}
        if "introduced" not in kinds:
            raise InvalidAdvisory("invalid_range", f"{rid}: a range needs an introduced event")
        if {"fixed", "last_affected"} <= kinds:
            raise InvalidAdvisory("fixed_and_last_affected", f"{rid}: a range holds either fixed "
                                  "or last_affected events, never both")
        checks = [(name, SCHEMES["semver"])] if rtype == "SEMVER" and models else schemes
        for where, check in checks:
            for kind, v in events:
                if not _special(kind, v):
                    _parse_or_reject(rid, check, v, where)
        ranges.append(Range(rtype, tuple(events)))
    if n_git:
        notes.append(f"{name}: {n_git} GIT range(s) not judged (commit hashes need the "
                     f"repository); its other ranges and versions list are")
    versions = tuple(str(v) for v in a.get("versions") or ())
    for where, scheme in schemes:
        for v in versions:
            if n_git and not scheme.accepts(v):
                notes.append(f"{name}: version {v!r} is not a {scheme.name} version; it "
                             f"matches only that exact string")
            else:
                _parse_or_reject(rid, scheme, v, where)
    if not ranges and not versions and not n_git:
        raise InvalidAdvisory("no_affected", f"{rid}: {name} lists neither ranges nor versions")
    if not models:
        notes.append(f"{name} ({ecosystem or 'no ecosystem'}): maps to no fleet model; skipped")
    return Affected(ecosystem, name, models, tuple(ranges), versions)


def _special(kind: str, v: str) -> bool:
    """``introduced: "0"`` sorts before every version; a ``limit`` containing ``*`` is
    infinity."""
    return (kind == "introduced" and v == "0") or (kind == "limit" and "*" in v)


def _parse_or_reject(rid: str, scheme: Scheme, v: str, name: str) -> Version:
    try:
        return scheme.parse(v, context=name)
    except UnparsableVersion as exc:
        raise InvalidAdvisory("unparsable_version", f"{rid}: {exc}") from exc


def _severity(record: Mapping) -> tuple[str, float | None]:
    """The record's severity word and numeric score, where the feed gives them."""
    word = None
    db = record.get("database_specific")
    if isinstance(db, Mapping) and isinstance(db.get("severity"), str):
        word = db["severity"].upper()
    score = None
    for s in record.get("severity") or ():
        try:
            score = float(s.get("score"))
        except (TypeError, ValueError, AttributeError):
            continue
    if word not in SEVERITY_FLOOR and score is not None:
        word = next((w for w, floor in SEVERITY_FLOOR.items() if score >= floor), "LOW")
    if word == "MEDIUM":
        word = "MODERATE"
    return (word if word in SEVERITY_FLOOR else "UNKNOWN"), score


def range_affects(version: Version, rng: Range, scheme: Scheme) -> bool:
    """The OSV rule for one range (``IncludedInRanges`` with ``BeforeLimits``): the
    version must be below ANY ``limit`` (no limit: unbounded; ``*``: infinity);
    then walk the events sorted by version: ``introduced`` at or below it sets
    vulnerable, ``fixed`` at or below it clears, ``last_affected`` strictly below
    it clears. Raises :class:`UnparsableVersion` for an event ``scheme`` cannot read."""
    limits = [v for k, v in rng.events if k == "limit"]
    if limits and not any(_special("limit", v) or version < scheme.parse(v) for v in limits):
        return False
    ordered = sorted(((k, None if _special(k, v) else scheme.parse(v))
                      for k, v in rng.events if k != "limit"),
                     key=lambda e: (e[1] is not None, e[1].key if e[1] is not None else ()))
    vulnerable = False
    for kind, v in ordered:
        if kind == "introduced" and (v is None or version >= v):
            vulnerable = True
        elif kind == "fixed" and version >= v:
            vulnerable = False
        elif kind == "last_affected" and version > v:
            vulnerable = False
    return vulnerable


def affects(affected: Affected, text: str, scheme: Scheme) -> bool:
    """True when version ``text`` of a model is affected by this entry
    (``IncludedInVersions`` or ``IncludedInRanges``). A string the scheme cannot
    read matches only an identical explicit version; a range whose events the
    scheme cannot read (a scheme configured after loading) is not judged."""
    if text in affected.versions:
        return True
    try:
        version = scheme.parse(text)
    except UnparsableVersion:
        return False
    if any(scheme.accepts(v) and scheme.parse(v) == version for v in affected.versions):
        return True
    for rng in affected.ranges:
        judge = SCHEMES["semver"] if rng.type == "SEMVER" else scheme
        try:
            v = version if judge is scheme else judge.parse(text)
            if range_affects(v, rng, judge):
                return True
        except UnparsableVersion:
            continue
    return False
