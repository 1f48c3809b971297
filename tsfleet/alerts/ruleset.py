"""Alert rules as data: a TOML file validated by pydantic.

A rule, in the spirit of a Prometheus alerting rule, selects rows of a findings
view (the findings contract columns) with a SQL condition; each matching row is
one alert instance. ``for`` is how long the condition must hold before the alert
fires, ``keep_firing_for`` how long it keeps firing after the condition clears.

>>> pack = parse_rules('''
... [[rule]]
... name = "BatteryCritical"
... source = "power_findings"
... condition = "finding = 'battery_critical'"
... for = "30m"
... keep_firing_for = "2h"
... annotations = { summary = "{subject_id}: battery at {value:.0f} %" }
... ''')
>>> pack.rules[0].for_s, pack.rules[0].keep_firing_for_s
(1800, 7200)
"""

from __future__ import annotations

import re
import string
import tomllib
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tsfleet.domain import FINDINGS_VIEWS, declared_codes, undeclared_codes
from tsfleet.errors import TsfleetError

#: Columns every findings view publishes (the domain contract), with their types.
CONTRACT_COLUMNS: dict[str, str] = {
    "domain": "VARCHAR", "finding": "VARCHAR", "subject_kind": "VARCHAR",
    "subject_id": "VARCHAR", "site": "VARCHAR", "zone": "VARCHAR", "severity": "VARCHAR",
    "value": "DOUBLE", "summary": "VARCHAR", "action": "VARCHAR", "due_at": "TIMESTAMP",
    "observed_at": "TIMESTAMP",
}
BUILTIN_RULES = Path(__file__).parent / "rules" / "builtin.toml"
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (86400, 3600, 60, 1)
Severity = Literal["info", "warning", "critical"]


class RuleError(TsfleetError, ValueError):
    """A rules file that cannot be used: the message names the rule and the field."""


def parse_duration(value: object) -> int:
    """Seconds of a Prometheus-style duration (``90s``, ``5m``, ``1h30m``, ``2d``) or a number.

    >>> parse_duration("1h30m"), parse_duration(45), parse_duration("0s")
    (5400, 45, 0)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 5m, 1h or 2d, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return int(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m and any(m.groups()):
            return sum(int(g) * u for g, u in zip(m.groups(), _UNITS, strict=True) if g)
    raise ValueError(f"expected a duration like 30s, 5m, 1h or 2d, got {value!r}")


class Rule(BaseModel):
    """One alerting rule over a findings view."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                      description="Alert name (label alertname); unique in the pack.",
                      examples=["BatteryCritical"])
    source: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                        description="View or table with the findings contract columns.",
                        examples=["power_findings"])
    condition: str = Field("true", min_length=1,
                           description="SQL boolean expression over the contract columns.",
                           examples=["finding = 'battery_critical'"])
    for_s: int = Field(0, alias="for", description="Seconds the condition must hold to fire.",
                       examples=["10m"])
    keep_firing_for_s: int = Field(0, alias="keep_firing_for",
                                   description="Seconds it keeps firing once the condition "
                                               "clears (hysteresis).", examples=["2h"])
    severity: Severity | None = Field(None, description="Fixed severity; default: the "
                                                        "finding's own severity.")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="Static labels added to every alert of the rule.")
    annotations: dict[str, str] = Field(default_factory=lambda: {"summary": "{summary}"},
                                        description="Templates: {column} or {column:.1f} "
                                                    "over the contract columns.")
    enabled: bool = True

    @field_validator("for_s", "keep_firing_for_s", mode="before")
    @classmethod
    def _duration(cls, v: object) -> int:
        return parse_duration(v)

    @field_validator("condition")
    @classmethod
    def _condition(cls, v: str) -> str:
        if ";" in v:
            raise ValueError("must be one SQL expression, without ';'")
        error = _condition_error(v)
        if error:
            raise ValueError(error)
        return v

    @model_validator(mode="after")
    def _declared_codes(self) -> Rule:
        unknown = undeclared_codes(self.source, self.condition)
        if unknown:
            domain = FINDINGS_VIEWS[self.source]
            raise ValueError(
                f"condition names finding codes that {domain} does not emit: "
                f"{', '.join(unknown)}; declared: {', '.join(declared_codes()[domain])}")
        return self

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"label name {key!r} is not a valid label name")
            if key in RESERVED_LABELS:
                raise ValueError(f"label {key!r} is set from the finding; choose another name")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: dict[str, str]) -> dict[str, str]:
        for key, template in v.items():
            try:
                template_parts(template)
            except ValueError as exc:
                raise ValueError(f"annotation {key!r}: {exc}") from exc
        return v


#: Labels every alert gets from its finding (a rule's static labels may not reuse them).
RESERVED_LABELS = ("alertname", "severity", "domain", "finding", "subject_kind", "subject_id",
                   "site", "zone")
#: Labels that identify an alert: with the rule's static labels they make the fingerprint.
#: Severity, site and zone are attached but do not re-identify an alert when they change.
IDENTITY_LABELS = ("alertname", "finding", "subject_kind", "subject_id")


class RulePack(BaseModel):
    """A rules file: ``[[rule]]`` tables; ``include_builtin = true`` extends the built-in pack
    (a rule with the same name replaces the built-in one)."""

    model_config = ConfigDict(extra="forbid")

    include_builtin: bool = False
    rules: list[Rule] = Field(default_factory=list, alias="rule")

    @property
    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]


def template_parts(template: str) -> list[tuple[str, str | None, str | None]]:
    """Split an annotation template into (literal, column, format spec) parts.

    >>> template_parts("{subject_id} at {value:.1f} %")
    [('', 'subject_id', None), (' at ', 'value', '.1f'), (' %', None, None)]
    """
    parts = []
    for literal, field, spec, conv in string.Formatter().parse(template):
        if field is None:
            parts.append((literal, None, None))
            continue
        if conv:
            raise ValueError(f"conversion !{conv} is not supported in {{{field}}}")
        if field not in CONTRACT_COLUMNS:
            raise ValueError(f"unknown field {{{field}}}; expected one of "
                             f"{', '.join(CONTRACT_COLUMNS)}")
        if spec:
            sample = 1.5 if CONTRACT_COLUMNS[field] == "DOUBLE" else "x"
            try:
                format(sample, spec)
            except ValueError as exc:
                raise ValueError(f"bad format spec {spec!r} for {{{field}}}") from exc
        parts.append((literal, field, spec or None))
    return parts


@cache
def _probe() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    cols = ", ".join(f"NULL::{t} as {c}" for c, t in CONTRACT_COLUMNS.items())
    con.execute(f"create view contract as select {cols} where false")
    return con


def _condition_error(condition: str) -> str | None:
    """Why ``condition`` is not a boolean expression over the contract columns, or None."""
    try:
        _probe().cursor().execute(f"select count(*) from contract where ({condition})")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        return f"not a valid SQL condition over the findings columns: {first}"
    return None


def parse_rules(text: str, origin: str = "<rules>") -> RulePack:
    """Validate the TOML text of a rules file; :class:`RuleError` names rule and field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        pack = RulePack.model_validate(data)
    except ValidationError as exc:
        raise RuleError(_describe(exc, data, origin)) from exc
    names = [r.name for r in pack.rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RuleError(f"{origin}: rule {dupes[0]!r}: field 'name': defined more than once")
    if pack.include_builtin and origin != str(BUILTIN_RULES):
        base = load_rules(BUILTIN_RULES)
        own = {r.name for r in pack.rules}
        pack = RulePack(rule=[r for r in base.rules if r.name not in own] + pack.rules)
    return pack


def _describe(exc: ValidationError, data: dict, origin: str) -> str:
    messages = []
    raw_rules = data.get("rule") if isinstance(data.get("rule"), list) else []
    for err in exc.errors():
        loc = list(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
            i = loc[1]
            raw = raw_rules[i] if i < len(raw_rules) and isinstance(raw_rules[i], dict) else {}
            who = f"rule {raw['name']!r}" if isinstance(raw.get("name"), str) else f"rule #{i + 1}"
            field = ".".join(str(p) for p in loc[2:]) or "(rule)"
            field = {"for_s": "for", "keep_firing_for_s": "keep_firing_for"}.get(field, field)
            if err["type"] == "missing":
                msg = "is required"
            messages.append(f"{who}: field {field!r}: {msg}")
        else:
            messages.append(f"field {'.'.join(str(p) for p in loc)!r}: {msg}")
    return f"{origin}: " + "; ".join(messages)


def load_rules(path: str | Path | None = None) -> RulePack:
    """The rule pack in ``path``, or the built-in pack when ``path`` is None."""
    path = Path(path) if path else BUILTIN_RULES
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read rules file {path}: {exc.strerror}") from exc
    return _parse_cached(text, str(path))


@lru_cache(maxsize=16)
def _parse_cached(text: str, origin: str) -> RulePack:
    return parse_rules(text, origin)
