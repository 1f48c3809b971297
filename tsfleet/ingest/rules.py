"""Column rules derived from the pydantic models, rendered as DuckDB SQL.

The models say what a valid row is; this module turns each field into a parse
expression and an ordered list of checks that DuckDB evaluates on whole
columns. A failing check yields a short ``reason`` code and a ``detail``
sentence naming what was received and what was expected.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import datetime

import annotated_types as at
import pyarrow as pa

from tsfleet.models import IngestModel, max_chars
from tsfleet.store import quote_ident

#: Earliest and latest timestamps accepted (UTC); anything else is a typo or
#: a millisecond epoch given as seconds.
TS_MIN = "1990-01-01"
TS_MAX = "2100-01-01"


def sql_literal(text: str) -> str:
    """A SQL string literal for a constant that tsfleet itself chose."""
    return "'" + str(text).replace("'", "''") + "'"


@dataclass(frozen=True)
class FieldRule:
    name: str
    sqltype: str  # VARCHAR, TIMESTAMP, DOUBLE, BIGINT, BOOLEAN
    required: bool
    default: object = None
    choices: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    lowercase: bool = False  # a name stored in lower case (json_schema_extra x-lowercase)

    @property
    def sql_default(self) -> str:
        if self.default is None:
            return f"NULL::{self.sqltype}"
        if isinstance(self.default, bool):
            return "TRUE" if self.default else "FALSE"
        if isinstance(self.default, (int, float)):
            return repr(float(self.default)) if self.sqltype == "DOUBLE" else str(self.default)
        return sql_literal(str(self.default))


def _unwrap(annotation: object) -> tuple[object, bool]:
    """(inner type, is_optional) of ``X | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def field_rules(model: type[IngestModel]) -> list[FieldRule]:
    """The rules of every field of ``model``, in declaration order."""
    rules = []
    for name, info in model.model_fields.items():
        inner, _optional = _unwrap(info.annotation)
        choices: tuple[str, ...] = ()
        if typing.get_origin(inner) is typing.Literal:
            choices = tuple(str(a) for a in typing.get_args(inner))
            sqltype = "VARCHAR"
        elif inner is datetime:
            sqltype = "TIMESTAMP"
        elif inner is bool:
            sqltype = "BOOLEAN"
        elif inner is int:
            sqltype = "BIGINT"
        elif inner is float:
            sqltype = "DOUBLE"
        else:
            sqltype = "VARCHAR"
        bounds: dict[str, float] = {}
        for meta in info.metadata:
            for attr, kind in (("ge", at.Ge), ("gt", at.Gt), ("le", at.Le), ("lt", at.Lt)):
                if isinstance(meta, kind):
                    bounds[attr] = float(getattr(meta, attr))
        default = None if info.is_required() else info.default
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rules.append(FieldRule(name, sqltype, info.is_required(), default, choices, **bounds,
                               lowercase=bool(extra.get("x-lowercase"))))
    return rules


def parse_expr(rule: FieldRule, arrow_type: pa.DataType | None) -> str:
    """SQL turning the raw input column into the field's type (NULL when unparsable)."""
    if arrow_type is None:
        return f"NULL::{rule.sqltype}"
    col = quote_ident(rule.name)
    is_num = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    text = f"nullif(trim(CAST({col} AS VARCHAR)), '')"
    if rule.sqltype == "VARCHAR":
        expr = text if not (rule.choices or rule.lowercase) else f"lower({text})"
        if is_nested(arrow_type):       # a list or a record is not one id or text
            expr = "NULL::VARCHAR"
    elif rule.sqltype == "TIMESTAMP":
        if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
            expr = f"CAST({col} AS TIMESTAMP)"
            if pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None:
                expr = f"CAST(CAST({col} AS TIMESTAMPTZ) AS TIMESTAMP)"
        elif is_num:
            expr = f"CAST({_epoch(f'CAST({col} AS DOUBLE)')} AS TIMESTAMP)"
        else:
            expr = (
                f"CASE WHEN regexp_full_match({text}, '-?[0-9]+(\\.[0-9]+)?') "
                f"THEN CAST({_epoch(f'TRY_CAST({text} AS DOUBLE)')} AS TIMESTAMP) "
                f"ELSE TRY_CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP) END"
            )
        expr = (
            f"CASE WHEN ({expr}) >= TIMESTAMP '{TS_MIN}' AND ({expr}) < TIMESTAMP '{TS_MAX}' "
            f"THEN ({expr}) END"
        )
    elif rule.sqltype == "DOUBLE":
        expr = f"CAST({col} AS DOUBLE)" if is_num else f"TRY_CAST({text} AS DOUBLE)"
    elif rule.sqltype == "BIGINT":
        # digits convert exactly (through a double, 2^63 - 1 would round beyond 64 bits)
        num = f"CAST({col} AS DOUBLE)" if is_num else f"TRY_CAST({text} AS DOUBLE)"
        expr = f"CASE WHEN {num} = round({num}) THEN TRY_CAST({num} AS BIGINT) END"
        if pa.types.is_integer(arrow_type):
            expr = f"TRY_CAST({col} AS BIGINT)"
        elif not is_num:
            expr = (f"CASE WHEN regexp_full_match({text}, '[-+]?[0-9]+') "
                    f"THEN TRY_CAST({text} AS BIGINT) ELSE {expr} END")
    else:  # BOOLEAN
        expr = (
            f"CAST({col} AS BOOLEAN)"
            if pa.types.is_boolean(arrow_type)
            else f"TRY_CAST({text} AS BOOLEAN)"
        )
    return expr


def is_nested(arrow_type: pa.DataType) -> bool:
    """A list, record or map column (from Python rows or Arrow tables)."""
    return pa.types.is_nested(arrow_type)


def clipped(text: str, width: int = 120) -> str:
    """SQL: ``text`` cut to ``width`` characters for a message (an ellipsis marks the cut)."""
    return f"CASE WHEN length({text}) > {width} THEN left({text}, {width - 1}) || '…' " \
           f"ELSE {text} END"


#: Unix seconds beyond this are no time tsfleet accepts (TS_MAX is about 4.1e9); the SQL
#: conversion of a larger number fails for the whole query, not for its row
EPOCH_LIMIT = 1e12


def _epoch(seconds: str) -> str:
    """SQL: ``to_timestamp`` of a number of seconds, NULL where it is out of any range."""
    return f"to_timestamp(CASE WHEN abs({seconds}) < {EPOCH_LIMIT:.0e} THEN {seconds} END)"


def present_expr(rule: FieldRule, arrow_type: pa.DataType | None) -> str:
    """SQL: the raw input column holds something (not NULL, not blank)."""
    if arrow_type is None:
        return "FALSE"
    return f"nullif(trim(CAST({quote_ident(rule.name)} AS VARCHAR)), '') IS NOT NULL"


_BAD = {
    "TIMESTAMP": "bad_timestamp",
    "DOUBLE": "bad_number",
    "BIGINT": "bad_number",
    "BOOLEAN": "bad_boolean",
    "VARCHAR": "bad_value",
}
_EXPECT = {
    "TIMESTAMP": f"an ISO 8601 time or Unix seconds between {TS_MIN} and {TS_MAX}",
    "DOUBLE": "a number",
    "BIGINT": "a whole number of at most 18 digits",
    "BOOLEAN": "true or false",
    "VARCHAR": "one id or text (not a list or a record)",
}


def checks(
    rule: FieldRule, context: str, can_fail_parse: bool = True
) -> list[tuple[str, str, str]]:
    """Ordered (condition, reason, detail) triples over the parsed columns.

    Conditions see the parsed value as ``p_<name>`` and the raw value as
    ``r_<name>`` (text). ``context`` is a SQL text expression naming the row
    (device and time) for the messages.
    """
    p, r = quote_ident("p_" + rule.name), quote_ident("r_" + rule.name)
    name = rule.name
    got = f"coalesce({clipped(r)}, 'nothing')"
    out = []
    if can_fail_parse:
        out.append(
            (
                f"{r} IS NOT NULL AND {p} IS NULL",
                _BAD[rule.sqltype],
                f"'{name} must be {_EXPECT[rule.sqltype]}, got ' || {got} || {context}",
            )
        )
    if rule.required:
        out.append(
            (f"{p} IS NULL", "missing_field", f"'{name} is required and missing' || {context}")
        )
    if rule.sqltype == "DOUBLE":
        out.append(
            (
                f"isnan({p}) OR isinf({p})",
                "nan_value",
                f"'{name} must be a finite number, got ' || coalesce({r}, CAST({p} AS VARCHAR))"
                f" || {context}",
            )
        )
    if rule.sqltype == "VARCHAR" and not rule.choices:
        most = max_chars(name)
        out.append(
            (
                f"length({p}) > {most}",
                "bad_value",
                f"'{name} must be at most {most} characters, got ' || length({p}) || "
                f"' starting ' || {clipped(p, 40)} || {context}",
            )
        )
    if rule.choices:
        allowed = ", ".join(sql_literal(c) for c in rule.choices)
        out.append(
            (
                f"{p} NOT IN ({allowed})",
                "invalid_choice",
                f"'{name} must be one of {'|'.join(rule.choices)}, got ' || {got} || {context}",
            )
        )
    lo = rule.ge if rule.ge is not None else rule.gt
    hi = rule.le if rule.le is not None else rule.lt
    conds = []
    if rule.ge is not None:
        conds.append(f"{p} < {rule.ge!r}")
    if rule.gt is not None:
        conds.append(f"{p} <= {rule.gt!r}")
    if rule.le is not None:
        conds.append(f"{p} > {rule.le!r}")
    if rule.lt is not None:
        conds.append(f"{p} >= {rule.lt!r}")
    if conds:
        span = f"{'' if lo is None else _fmt(lo)}..{'' if hi is None else _fmt(hi)}"
        out.append(
            (
                " OR ".join(conds),
                "out_of_range",
                f"'{name} must be within {span}, got ' || {got} || {context}",
            )
        )
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
