"""One chunk of input rows -> validated, normalized, de-duplicated rows in DuckDB.

Every source (files, DataFrames, Arrow, dicts, MQTT/CoAP payloads) arrives
here as an Arrow table, so there is one validation path. All work is done by
DuckDB on whole columns inside one transaction per chunk:

1. ``_tsf_src``: the input with a row id (JSON lines are first split into
   columns, invalid JSON is quarantined; wide readings are unpivoted).
2. ``_tsf_checked``: each field parsed by the rules of its pydantic model,
   and the first failing check of each row as ``_reason`` and ``_detail``.
3. Rows with a reason go to ``quarantine`` with their raw JSON.
4. The rest are de-duplicated by the kind's key, within the chunk and against
   the store, and inserted (facts) or upserted (dimensions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa

from tsfleet.errors import IngestError
from tsfleet.ingest.report import IngestReport
from tsfleet.ingest.rules import (
    FieldRule,
    checks,
    clipped,
    field_rules,
    is_nested,
    parse_expr,
    present_expr,
    sql_literal,
)
from tsfleet.models import IngestModel
from tsfleet.store import QUARANTINE_INTO, transaction
from tsfleet.store import quote_ident as q

UnknownDevicePolicy = Literal["accept", "quarantine"]

#: A JSON object with more fields than this is quarantined as ``too_many_fields``.
MAX_FIELDS = 1024
#: At most this many field names become columns per chunk of JSON lines (wide
#: readings: metrics); rows holding a rarer name are quarantined, so that one
#: hostile row cannot make a column per key.
MAX_COLUMNS = 1024


def ingest_chunk(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    model: type[IngestModel],
    table: pa.Table,
    source: str,
    *,
    json_lines: bool = False,
    pre_quarantined: list[tuple[str, str, str]] = (),
    unknown_devices: UnknownDevicePolicy = "accept",
    hold_once: bool = False,
) -> IngestReport:
    """Validate and store one chunk; returns its report. Runs in one transaction.

    ``hold_once`` (a file's chunks): a rejected row that quarantine already holds from the
    same source is not held again. Not for the live service's batches: their source is
    one label for every batch, and the check would read all its quarantine per batch."""
    report = IngestReport(kind, source)
    if not json_lines:
        check_columns(model, kind, source, table.column_names)
    table = table.append_column("_rid", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    try:
        with transaction(con):
            batch_id = con.execute("select nextval('ingest_batch_seq')").fetchall()[0][0]
            report.batch_ids.append(batch_id)
            con.complete()
            con.register("_tsf_in", table)
            bid, src = str(int(batch_id)), sql_literal(source)
            kind_lit = sql_literal(kind)
            if pre_quarantined:
                pre = pa.table(
                    {
                        "reason": [r[0] for r in pre_quarantined],
                        "detail": [r[1] for r in pre_quarantined],
                        "raw": [r[2] for r in pre_quarantined],
                    }
                )
                con.complete()
                con.register("_tsf_pre", pre)
                con.execute(
                    f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, reason, "
                    f"detail, raw, now() from _tsf_pre"
                )
                report.n_rows += len(pre_quarantined)
                report.quarantined_by_reason.update(r[0] for r in pre_quarantined)
            if json_lines:
                before = sum(report.quarantined_by_reason.values())
                raw_sql = _split_json_lines(con, model, kind_lit, src, bid, report)
                n_split_out = sum(report.quarantined_by_reason.values()) - before
            else:
                n_split_out = 0
                cols = [c for c in table.column_names if c != "_rid"]
                con.execute("create or replace temp view _tsf_src as select * from _tsf_in")
                raw_sql = (
                    (
                        "to_json(struct_pack("
                        + ", ".join(f"{q(c)} := {_json_value(table.schema.field(c).type, c)}"
                                    for c in cols)
                        + "))::VARCHAR"
                    )
                    if cols
                    else "'{}'"
                )
            types = _column_types(con, "_tsf_src")
            if model.spec.table == "readings" and "metric" not in types and "value" not in types:
                types = _unpivot_wide(con, types)
            rules = field_rules(model)
            rejected_sql = _check(con, model, rules, types, unknown_devices)
            tf = model.spec.time_field
            span = (f"min({q(tf)}) filter (where _reason is null), "
                    f"max({q(tf)}) filter (where _reason is null)" if tf else "NULL, NULL")
            n_checked, n_bad, n_dup_keys, lo, hi = con.execute(
                f"select count(*), count(*) filter (where _reason is not null), "
                f"count(*) filter (where _reason is null) - "
                f"count(distinct _k) filter (where _reason is null), {span} from _tsf_checked"
            ).fetchall()[0]
            report.n_rows += n_checked + n_split_out
            if n_bad:
                con.execute(rejected_sql)
                _quarantine_checked(con, kind_lit, src, bid, raw_sql, report)
            if model.spec.mode == "insert":
                _insert_facts(con, model, rules, bid, kind_lit, src, raw_sql, report,
                              n_dup_keys=n_dup_keys, span=(lo, hi))
            else:
                _upsert_dimensions(con, model, rules, bid, report)
            report.n_quarantined = sum(report.quarantined_by_reason.values())
            if report.n_quarantined and hold_once:
                # a rejected row already held from the same source (the same file ingested
                # again) is not held twice: re-ingesting changes nothing, quarantine included
                con.execute(
                    f"delete from quarantine_rows n where n.batch_id = {bid} and exists (select 1 "
                    f"from quarantine_rows o where o.batch_id < {bid} and o.kind = {kind_lit} "
                    f"and o.source = {src} and o.reason = n.reason and o.raw = n.raw)")
            con.execute(
                f"insert into ingest_batches values ({bid}, {kind_lit}, {src}, now(), now(), "
                f"{report.n_rows}, {report.n_accepted}, {report.n_duplicates}, "
                f"{report.n_quarantined}, ?, ?)",
                [lo, hi] if report.n_accepted else [None, None],
            )
    finally:
        _cleanup(con)
    return report


def check_columns(model: type[IngestModel], kind: str, source: str, columns: list[str]) -> None:
    """Refuse a table whose columns cannot give a single valid row of ``kind``.

    A required field with no column at all means the file is of another kind or
    has the wrong header; refusing it whole (nothing committed) beats
    quarantining every row. Readings may also be wide: device_id, observed_at
    and one column per metric."""
    present = {c.strip() for c in columns if not c.startswith("_")}
    required = [r.name for r in field_rules(model) if r.required]
    missing = [f for f in required if f not in present]
    if model.spec.table == "readings" and set(missing) <= {"metric", "value"}:
        others = present - {"device_id", "observed_at"}
        if not missing or (len(missing) == 2 and others):
            return
    elif not missing:
        key = set(model.spec.key)
        fields = set(model.model_fields)
        unknown = present - fields
        if not (unknown and not (present & fields) - key):
            return
        # Only the key matches: a file of another kind (readings given as devices).
        found = ", ".join(c for c in columns if not c.startswith("_"))
        raise IngestError(
            f"cannot ingest {source} as {kind}: it has the columns {found}, of which only "
            f"{', '.join(sorted(present & key))} is a {kind} field; unknown: "
            f"{', '.join(sorted(unknown))}")
    wide = (" (or device_id, observed_at and one column per metric)"
            if model.spec.table == "readings" else "")
    found = ", ".join(c for c in columns if not c.startswith("_")) or "none"
    raise IngestError(
        f"cannot ingest {source} as {kind}: it has the columns {found}, but {kind} needs "
        f"{', '.join(required)}{wide}; missing: {', '.join(missing)}")


def _cleanup(con: duckdb.DuckDBPyConnection) -> None:
    con.complete()
    for name in ("_tsf_in", "_tsf_pre"):
        try:
            con.unregister(name)
        except duckdb.Error:
            pass
    con.execute("; ".join(
        [f"drop view if exists {name}" for name in ("_tsf_src", "_tsf_new")]
        + [f"drop table if exists {name}" for name in (
            "_tsf_long", "_tsf_checked", "_tsf_rejected", "_tsf_ok", "_tsf_upsert",
            "_tsf_later", "_tsf_seen", "_tsf_lines", "_tsf_dropped")]))


def _json_value(arrow_type: pa.DataType, col: str) -> str:
    """A column as a value of the raw JSON: NaN and infinities as text, since
    ``NaN`` is not JSON."""
    if pa.types.is_floating(arrow_type):
        c = f"s.{q(col)}"
        return f"CASE WHEN isfinite({c}) THEN to_json({c}) ELSE to_json(CAST({c} AS VARCHAR)) END"
    return f"s.{q(col)}"


def _column_types(con: duckdb.DuckDBPyConnection, rel: str) -> dict[str, pa.DataType]:
    schema = con.sql(f"select * from {rel} limit 0").to_arrow_table().schema
    return {f.name: f.type for f in schema if not f.name.startswith("_")}


def _split_json_lines(con, model: type[IngestModel], kind_lit: str, src: str, bid: str,
                      report: IngestReport) -> str:
    """Quarantine lines that are not JSON objects or have too many fields; expose
    the rest as text columns (at most ``MAX_COLUMNS`` of them)."""
    con.execute(
        f"create temp table _tsf_lines as select _rid, _line, _ok, _n > {MAX_FIELDS} as _wide, "
        "_n <> _nd as _dup from (select _rid, _line, _ok, len(k) as _n, "
        "len(list_distinct(k)) as _nd from (select _rid, _line, _ok, "
        "CASE WHEN _ok THEN json_keys(_line) END as k from (select _rid, _line, "
        "coalesce(try(json_type(_line)), '') = 'OBJECT' as _ok from _tsf_in)))"
    )
    bad = con.execute(
        f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, 'invalid_json', "
        "'expected one JSON object per line, got: ' || left(_line, 80), _line, now() "
        "from _tsf_lines where not _ok"
    ).fetchall()[0][0]
    if bad:
        report.quarantined_by_reason["invalid_json"] += bad
    wide = con.execute(
        f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, 'too_many_fields', "
        f"'an object of ' || len(json_keys(_line)) || ' fields; at most {MAX_FIELDS} are read', "
        "_line, now() from _tsf_lines where _wide"
    ).fetchall()[0][0]
    if wide:
        report.quarantined_by_reason["too_many_fields"] += wide
    dup = con.execute(
        f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, 'duplicate_field', "
        "'field ' || list_filter(k, lambda x: len(list_filter(k, lambda y: y = x)) > 1)[1] "
        "|| ' appears more than once in the object', _line, now() from (select _line, "
        "json_keys(_line) as k "
        "from _tsf_lines where _dup and not _wide)"
    ).fetchall()[0][0]
    if dup:
        report.quarantined_by_reason["duplicate_field"] += dup
    ok = "_ok and not _wide and not _dup"
    if model.spec.table != "readings":  # other fields are ignored: read the model's only
        keys = [r[0] for r in con.execute(
            f"select distinct k from (select unnest(json_keys(_line)) as k from _tsf_lines "
            f"where {ok}) where k in (select unnest(?))", [list(model.model_fields)]).fetchall()]
    else:  # wide readings: every other field is a metric
        counted = con.execute(
            f"select k, count(*) as n from (select unnest(json_keys(_line)) as k "
            f"from _tsf_lines where {ok}) where not starts_with(k, '_') group by k "
            "order by (k in ('device_id', 'observed_at', 'metric', 'value')) desc, n desc, k"
        ).fetchall()
        keys = [k for k, _ in counted if k][:MAX_COLUMNS]
        dropped = [k for k, _ in counted if k not in set(keys)]
        if dropped:
            _quarantine_dropped_keys(con, kind_lit, src, bid, report, dropped, len(counted))
            ok += " and _rid not in (select _rid from _tsf_dropped)"
    keys.sort()
    # a list or an object where the model wants one id or text (numbers, times and booleans
    # fail their own parsing): the row is quarantined, not stored as the JSON's text
    texts = [r.name for r in field_rules(model) if r.sqltype == "VARCHAR" and r.name in keys]
    if texts:
        typed = {k: f"json_type(_line, {sql_literal(_json_path(k))}) in ('ARRAY', 'OBJECT')"
                 for k in texts}
        which = "coalesce(" + ", ".join(
            f"CASE WHEN {c} THEN {sql_literal(k)} END" for k, c in typed.items()) + ")"
        # (only a line with a '[' or a '{' past its first character can nest: the others
        # skip the JSON parse per field)
        nested = ("(strpos(_line, '[') > 0 or strpos(substr(_line, 2), '{') > 0) and ("
                  + " or ".join(typed.values()) + ")")
        n = con.execute(
            f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, 'bad_value', {which} "
            f"|| ' must be one id or text, got a list or an object', _line, now() "
            f"from _tsf_lines where {ok} and ({nested})").fetchall()[0][0]
        if n:
            report.quarantined_by_reason["bad_value"] += n
            ok += f" and not ({nested})"
    cols = "".join(
        f", json_extract_string(_line, {sql_literal(_json_path(k))}) as {q(k)}" for k in keys
    )
    con.execute(
        f"create or replace temp view _tsf_src as "
        f"select _rid, _line{cols} from _tsf_lines where {ok}"
    )
    return "s._line"


def _quarantine_dropped_keys(con, kind_lit: str, src: str, bid: str, report: IngestReport,
                             dropped: list[str], n_keys: int) -> None:
    """Rows holding a field that is not read (an empty name, or beyond the
    ``MAX_COLUMNS`` most frequent names of the chunk) go to quarantine."""
    con.execute(
        "create temp table _tsf_dropped as select _rid, min(k) as k from (select _rid, "
        "unnest(json_keys(_line)) as k from _tsf_lines where _ok and not _wide and not _dup) "
        "where k in (select unnest(?)) group by _rid", [dropped])
    rows = con.execute(
        f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, CASE WHEN d.k = '' THEN "
        "'unnamed_field' ELSE 'too_many_fields' END, CASE WHEN d.k = '' THEN "
        "'a field with an empty name holds a value' ELSE 'field ' || d.k || ' is beyond the "
        f"{MAX_COLUMNS} field names read per chunk (this chunk has {n_keys})' END, l._line, "
        "now() from _tsf_dropped d join _tsf_lines l using (_rid) returning reason").fetchall()
    report.quarantined_by_reason.update(Counter(r[0] for r in rows))


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unpivot_wide(con, types: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """Wide readings (one column per metric) -> long rows of metric and value."""
    ids = [c for c in ("device_id", "observed_at") if c in types]
    metrics = [c for c in types if c not in ids]
    if not metrics:  # nothing to unpivot: every row will say what is missing
        return types
    numeric = all(pa.types.is_integer(types[m]) or pa.types.is_floating(types[m]) for m in metrics)
    cast = "DOUBLE" if numeric else "VARCHAR"
    id_cols = "".join(f"{q(c)}, " for c in ids)
    casts = ", ".join(f"CAST({q(m)} AS {cast}) as {q(m)}" for m in metrics)
    con.execute(
        f"create temp table _tsf_long as select row_number() over () as _rid, * from (unpivot "
        f"(select _rid as _src_rid, {id_cols}{casts} from _tsf_src) on "
        f"{', '.join(q(m) for m in metrics)} into name metric value value)"
    )
    long_types = {c: types[c] for c in ids}
    long_types["_src_rid"] = pa.int64()
    long_types["metric"] = pa.string()
    long_types["value"] = pa.float64() if numeric else pa.string()
    return long_types


def _check(
    con,
    model: type[IngestModel],
    rules: list[FieldRule],
    types: dict[str, pa.DataType],
    unknown_devices: UnknownDevicePolicy,
) -> None:
    """Materialize ``_tsf_checked`` (parsed rows, ``_reason``, key and value hashes).

    Returns the SQL that builds ``_tsf_rejected`` (the rejected rows only, with a
    ``_detail`` sentence), to be run only when some row was rejected."""
    wide = "_src_rid" in types  # the unpivoted long table keeps the wide row's id
    base = "_tsf_long" if wide else "_tsf_src"
    src_rid = "_src_rid" if wide else "_rid"
    names = {r.name for r in rules}
    parsed = [f"{parse_expr(r, types.get(r.name))} as {q('p_' + r.name)}" for r in rules]
    # r_<name>: the raw text, only where parsing can fail (text input); else never "bad".
    fallible = {r.name for r in rules if r.name in types and not _native(r, types[r.name])}
    raw = [
        (
            f"CASE WHEN {present_expr(r, types[r.name])} THEN CAST({q(r.name)} AS VARCHAR) END"
            if r.name in fallible
            else "NULL::VARCHAR"
        )
        + f" as {q('r_' + r.name)}"
        for r in rules
    ]
    time_field = model.spec.time_field
    # the row named in messages: its device or gateway, else its key (a metric, a release)
    key_names = " || ' ' || ".join(f"coalesce({q('p_' + k)}::VARCHAR, '?')"
                                   for k in model.spec.key if k in names)
    who = (
        "p_device_id"
        if "device_id" in names
        else ("p_gateway_id" if "gateway_id" in names else (key_names or None))
    )
    context = "''"
    if who:
        context = f"' for ' || coalesce({clipped(who, 80)}, '?')"
    if time_field:
        context += (
            f" || ' at ' || coalesce(strftime({q('p_' + time_field)}, '%Y-%m-%dT%H:%M:%SZ'), '?')"
        )
    conds: list[tuple[str, str, str]] = []
    for r in rules:
        conds.extend(checks(r, context, can_fail_parse=r.name in fallible))
    joins = ""
    finals = {
        r.name: (
            f"coalesce({q('p_' + r.name)}, {r.sql_default})"
            if r.default is not None
            else q("p_" + r.name)
        )
        for r in rules
    }
    store_check = STORE_CHECKS.get(model.spec.table)
    if store_check is not None:        # what only the store can tell (the catalog)
        joins, more, final = store_check(context)
        conds.extend(more)
        finals.update(final)
    for low, high in model.spec.ordered:       # a range must be one (min below max)
        lo, hi = q("p_" + low), q("p_" + high)
        conds.append(
            (
                f"{lo} >= {hi}",
                "out_of_range",
                f"format('{low} must be below {high}, got {{:g}} and {{:g}}', {lo}, {hi})"
                f" || {context}",
            )
        )
    if "device_id" in names and model.spec.table != "devices" and unknown_devices == "quarantine":
        joins += " left join devices _d on _d.device_id = p_device_id"
        conds.append(
            (
                "_d.device_id IS NULL",
                "unknown_device",
                f"'device ' || p_device_id || ' is not registered in devices' || {context}",
            )
        )
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r}'" for c, r, _ in conds) + " END"
    detail = "CASE " + " ".join(f"WHEN {c} THEN {d}" for c, _, d in conds) + " END"
    final_cols = ", ".join(f"{expr} as {q(name)}" for name, expr in finals.items())
    if model.spec.mode == "upsert":     # _g_<name>: the row gives the field (_upsert_dimensions)
        final_cols += "".join(f", {q('p_' + r.name)} IS NOT NULL as {q('_g_' + r.name)}"
                              for r in rules if r.name not in model.spec.key)
    key = [q(k) for k in model.spec.key]
    nonkey = [q(r.name) for r in rules if r.name not in model.spec.key] or ["_rid"]
    inner = f"select _rid, {src_rid} as _src_rid, {', '.join(parsed + raw)} from {base}"
    con.execute(
        f"create temp table _tsf_checked as select *, hash({', '.join(key)}) as _k, "
        f"hash({', '.join(nonkey)}) as _h from (select _rid, _src_rid, {final_cols}, "
        f"{reason} as _reason from ({inner}) {joins})"
    )
    return (
        f"create temp table _tsf_rejected as select _src_rid, {reason} as _reason, "
        f"{detail} as _detail from ({inner} where _rid in "
        f"(select _rid from _tsf_checked where _reason is not null)) {joins}"
    )


#: A store check: (joins, checks, final expressions) of a kind's rows against the store,
#: given the row's context text; checks are (condition, reason, detail) as ``checks`` makes.
StoreCheck = Callable[[str], tuple[str, list[tuple[str, str, str]], dict[str, str]]]


def _reading_rules(context: str) -> tuple[str, list[tuple[str, str, str]], dict[str, str]]:
    """A reading's metric from the catalog (an alias converted to its canonical metric and
    unit), and its value within the metric's physical range: ``unknown_metric``,
    ``out_of_range``."""
    joins = (
        " left join metric_aliases _a on _a.alias = lower(p_metric)"
        " left join metric_catalog _c on _c.metric = coalesce(_a.metric, lower(p_metric))"
    )
    canon = 'p_value * coalesce(_a.scale, 1) + coalesce(_a."offset", 0)'
    conds = [
        (
            "_c.metric IS NULL",
            "unknown_metric",
            f"'metric ' || p_metric || ' is not in metric_catalog or metric_aliases'"
            f" || {context}",
        ),
        (
            f"({canon}) < _c.min_value OR ({canon}) > _c.max_value",
            "out_of_range",
            f"format('{{}} must be within {{:g}}..{{:g}}, got {{:g}}', _c.metric, "
            f"_c.min_value, _c.max_value, {canon}) || {context}",
        ),
    ]
    return joins, conds, {"metric": "_c.metric", "value": canon}


def _declaration_rules(context: str) -> tuple[str, list[tuple[str, str, str]], dict[str, str]]:
    """A metric declaration against the store. Against the metrics tsfleet ships
    (``metric_builtins``): it may narrow a built-in metric's range, not change its unit
    (compared by meaning through ``metric_units``) nor widen its range; an alias of a
    built-in metric is no metric of its own (``builtin_metric``). Against the readings: a
    metric of the user's own keeps its unit while readings of it are stored, raw or
    rolled up (``unit_change``: they would be read in the new unit)."""
    joins = (" left join metric_builtins _b on _b.metric = lower(p_metric)"
             " left join metric_units _du on _du.unit = p_unit"
             " left join metric_units _bu on _bu.unit = _b.unit"
             " left join metric_aliases _ba on _ba.alias = lower(p_metric)"
             " and _ba.metric in (select metric from metric_builtins)"
             " left join metric_catalog _sc on _sc.metric = lower(p_metric)"
             " and _b.metric IS NULL"
             " left join metric_units _su on _su.unit = _sc.unit"
             # device_latest counts every reading stored at ingest, retention's
             # rolled-up ones too: one small lookup instead of scanning readings
             " left join (select metric, sum(n_readings)::bigint as n from device_latest"
             " group by metric) _sn on _sn.metric = _sc.metric")
    conds = [
        (
            "_ba.alias IS NOT NULL",
            "builtin_metric",
            "format('{} is an alias of the built-in metric {} ({}): it cannot be declared', "
            f"_ba.alias, _ba.metric, _ba.note) || {context}",
        ),
        (
            "_b.metric IS NOT NULL AND coalesce(_du.means, p_unit) <> coalesce(_bu.means, _b.unit)",
            "builtin_metric",
            "format('{} is a built-in metric in {}: a declaration cannot change its unit, "
            f"got {{}}', _b.metric, _b.unit, p_unit) || {context}",
        ),
        (
            "_b.metric IS NOT NULL AND (p_min_value < _b.min_value OR p_max_value > _b.max_value)",
            "builtin_metric",
            "format('{} is a built-in metric whose physical range is {:g}..{:g}: a declaration "
            "may narrow it, not widen it, got {:g}..{:g}', _b.metric, _b.min_value, "
            f"_b.max_value, p_min_value, p_max_value) || {context}",
        ),
        (   # the message names the metric: no context after it
            "_sc.metric IS NOT NULL AND coalesce(_sn.n, 0) > 0 "
            "AND coalesce(_du.means, p_unit) <> coalesce(_su.means, _sc.unit)",
            "unit_change",
            "format('{} has {:,} {} stored in {}, which a redeclaration in {} would read as {}: "
            "declare a new metric name for {} instead', _sc.metric, _sn.n, "
            "CASE WHEN _sn.n = 1 THEN 'reading' ELSE 'readings' END, _sc.unit, p_unit, p_unit, "
            "p_unit)",
        ),
    ]
    return joins, conds, {}


#: The checks of a kind's rows that need the store, by the kind's table: which no row
#: model can make.
STORE_CHECKS: dict[str, StoreCheck] = {"readings": _reading_rules,
                                       "metric_declarations": _declaration_rules}


def _native(rule: FieldRule, arrow_type: pa.DataType) -> bool:
    """True when the input column's type cannot fail to parse as the field's type."""
    if rule.sqltype == "TIMESTAMP":
        return pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)
    if rule.sqltype == "DOUBLE":
        return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    if rule.sqltype == "VARCHAR":
        return not rule.choices and not is_nested(arrow_type)
    return False


def _quarantine_checked(
    con, kind_lit: str, src: str, bid: str, raw_sql: str, report: IngestReport
) -> None:
    """One quarantine row per input row and problem: the cells of a wide row that
    fail for the same reason (a missing device_id) are one entry, not one per metric."""
    rows = con.execute(
        f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, c._reason, "
        f"c._detail, {raw_sql}, now() from (select distinct _src_rid, _reason, _detail "
        f"from _tsf_rejected) c join _tsf_src s on s._rid = c._src_rid order by c._src_rid "
        f"returning reason"
    ).fetchall()
    n_rejected = con.execute("select count(*) from _tsf_rejected").fetchall()[0][0]
    report.n_rows -= n_rejected - len(rows)
    report.quarantined_by_reason.update(Counter(r[0] for r in rows))


def _insert_facts(con, model, rules, bid: str, kind_lit: str, src: str, raw_sql: str,
                  report: IngestReport, *, n_dup_keys: int, span: tuple) -> None:
    """Insert new rows; absorb duplicates; quarantine same-key rows with other values.

    Keys are compared through a 64-bit hash first (fast, one column) and then
    exactly: a hash collision can never merge two different rows. ``span`` is the
    chunk's (min, max) time, which bounds the lookup of rows already stored.
    """
    key = list(model.spec.key)
    cols = [r.name for r in rules]
    nonkey = [c for c in cols if c not in key] or ["_rid"]
    part = ", ".join(q(k) for k in key)
    table = q(model.spec.table)
    fresh = "_reason is null"
    sources = ["select _src_rid, _h, _eh from _tsf_seen"]
    # 1. Repeats inside the chunk: the first row of a key wins.
    if n_dup_keys:
        con.execute(
            f"create temp table _tsf_later as select _rid, _src_rid, _h, _h0 as _eh from "
            f"(select _rid, _src_rid, _h, first_value(_h) over w as _h0, row_number() over w "
            f"as _rn from _tsf_checked where {fresh} and _k in (select _k from _tsf_checked "
            f"where {fresh} group by _k having count(*) > 1) "
            f"window w as (partition by {part} order by _rid)) where _rn > 1")
        fresh += " and _rid not in (select _rid from _tsf_later)"
        sources.append("select _src_rid, _h, _eh from _tsf_later")
    # 2. Rows already in the store (looked up within the chunk's time range).
    where, params = "", []
    if model.spec.time_field:
        where, params = f"where {q(model.spec.time_field)} between ? and ?", list(span)
    on = " and ".join(f"o.{q(k)} = e.{q(k)}" for k in key)
    h = f"hash({', '.join(q(c) for c in nonkey)})"
    n_seen = con.execute(
        f"create temp table _tsf_seen as select o._rid, o._src_rid, o._h, e._eh "
        f"from (select * from _tsf_checked where {fresh}) o join "
        f"(select {part}, {h} as _eh from {table} {where}) e on {on}", params).fetchall()[0][0]
    con.execute(f"create or replace temp view _tsf_new as select * from _tsf_checked where "
                f"{fresh} and _rid not in (select _rid from _tsf_seen)")
    n_new = con.execute(
        f"insert into {table} ({', '.join(q(c) for c in cols)}, batch_id) "
        f"select {', '.join(q(c) for c in cols)}, {bid} from _tsf_new").fetchall()[0][0]
    repeats = " union all ".join(sources)
    dups = conflicts = 0
    if n_seen or n_dup_keys:
        dups, conflicts = con.execute(
            f"select count(*) filter (where _eh = _h), count(*) filter (where _eh <> _h) "
            f"from ({repeats})").fetchall()[0]
    if conflicts:
        con.execute(
            f"insert into {QUARANTINE_INTO} select {bid}, {kind_lit}, {src}, "
            f"'conflicting_duplicate', 'a row with the same key ({', '.join(key)}) and "
            f"different values was stored first', {raw_sql}, now() from (select _src_rid "
            f"from ({repeats}) where _eh <> _h) c join _tsf_src s on s._rid = c._src_rid")
        report.quarantined_by_reason["conflicting_duplicate"] += conflicts
    report.n_accepted += n_new
    report.n_duplicates += dups
    if model.spec.table == "readings" and n_new:
        _update_latest(con, bid)


def _update_latest(con, bid: str) -> None:
    """Fold the chunk's new readings, one row per device and metric, into
    ``device_latest`` (a MERGE: about half the time of INSERT ... ON CONFLICT)."""
    con.execute(
        "merge into device_latest l using (select device_id, metric, max(observed_at) as "
        f"observed_at, arg_max(value, observed_at) as value, {bid} as batch_id, count(*) as "
        "n_readings, min(observed_at) as first_observed_at, now() as last_received_at "
        "from _tsf_new group by device_id, metric) e "
        "on l.device_id = e.device_id and l.metric = e.metric "
        "when matched then update set "
        "value = CASE WHEN e.observed_at >= l.observed_at THEN e.value ELSE l.value END, "
        "observed_at = greatest(e.observed_at, l.observed_at), batch_id = e.batch_id, "
        "n_readings = l.n_readings + e.n_readings, "
        "first_observed_at = least(e.first_observed_at, l.first_observed_at), "
        "last_received_at = e.last_received_at "
        "when not matched then insert values (e.device_id, e.metric, e.observed_at, e.value, "
        "e.batch_id, e.n_readings, e.first_observed_at, e.last_received_at)"
    )


def _upsert_dimensions(con, model, rules, bid: str, report: IngestReport) -> None:
    """Insert new keys and update the stored rows of known ones. A field that a row does not
    give (absent, null or blank) keeps its stored value; a new key takes the field's default.
    The rows of one key in one batch apply in their order (each field from the last row that
    gives it). A row that changes nothing counts as a duplicate."""
    key = list(model.spec.key)
    cols = [r.name for r in rules]
    nonkey = [c for c in cols if c not in key]
    part = ", ".join(q(k) for k in key)
    table = q(model.spec.table)
    on = " and ".join(f"o.{q(k)} = e.{q(k)}" for k in key)
    agg = "".join(
        f", coalesce(arg_max({q(c)}, _rid) filter (where {q('_g_' + c)}), "
        f"arg_max({q(c)}, _rid)) as {q(c)}, bool_or({q('_g_' + c)}) as {q('_g_' + c)}"
        for c in nonkey)
    con.execute(
        f"create temp table _tsf_ok as select {part}, count(*) as _n{agg} "
        f"from _tsf_checked where _reason is null group by {part}")
    stored = f"e.{q(key[0])} IS NOT NULL"
    merged = [f"o.{q(k)} as {q(k)}" for k in key] + [
        f"CASE WHEN {stored} AND NOT o.{q('_g_' + c)} THEN e.{q(c)} ELSE o.{q(c)} END "
        f"as {q(c)}" for c in nonkey]
    same = " AND ".join([stored] + [
        f"(CASE WHEN o.{q('_g_' + c)} THEN o.{q(c)} ELSE e.{q(c)} END) "
        f"IS NOT DISTINCT FROM e.{q(c)}" for c in nonkey])
    con.execute(
        f"create temp table _tsf_upsert as select {', '.join(merged)}, o._n, "
        f"({same}) as _same from _tsf_ok o left join {table} e on {on}")
    n_new = con.execute(
        f"insert or replace into {table} ({', '.join(q(c) for c in cols)}, batch_id) "
        f"select {', '.join(q(c) for c in cols)}, {bid} from _tsf_upsert where not _same"
    ).fetchall()[0][0]
    dups = con.execute(
        "select coalesce(count(*) filter (where _same) + sum(_n - 1), 0) from _tsf_upsert"
    ).fetchall()[0][0]
    report.n_accepted += n_new
    report.n_duplicates += dups
