"""Rule evaluation: rule results -> alert candidates -> one lifecycle step in SQL.

Each rule's matching rows are collected with one INSERT ... SELECT per rule (a rule
whose source is missing is skipped, a rule whose condition fails is recorded as an
error; neither stops the others nor touches their existing alerts). The state machine
then runs as one SQL statement over all alerts of the evaluated rules
(``sql/lifecycle.sql``), and the changes are written back in one transaction.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from tsfleet.alerts.ruleset import CONTRACT_COLUMNS, Rule, RulePack, template_parts
from tsfleet.errors import InvalidParameter
from tsfleet.results import write_result
from tsfleet.store import query_text, transaction
from tsfleet.store import quote_ident as q

_SQL = Path(__file__).parent / "sql"
_SEVERITY_RANK = "case severity when 'critical' then 3 when 'warning' then 2 else 1 end"
ALERT_COLUMNS = ("fingerprint", "rule", "state", "severity", "domain", "finding", "subject_kind",
                 "subject_id", "site", "zone", "value", "labels", "annotations", "action",
                 "due_at", "observed_at", "episode", "active_since", "starts_at", "ends_at",
                 "last_seen_at", "last_evaluated_at", "acknowledged_at", "acknowledged_by",
                 "silenced_by")


def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` beside this file (one loader: store.query_text)."""
    return query_text(_SQL, name)


@dataclass
class RuleRun:
    """How one rule fared in an evaluation."""

    rule: str
    source: str
    status: str                 # ok | skipped | error
    reason: str | None = None
    n_matches: int = 0
    duration_ms: float = 0.0


@dataclass
class Evaluation:
    """What one call of :func:`evaluate` did."""

    at: datetime
    runs: list[RuleRun]
    states: Counter = field(default_factory=Counter)        # alerts by state after the step
    transitions: Counter = field(default_factory=Counter)   # (from, to) -> count
    n_notifications: int = 0

    @property
    def skipped(self) -> dict[str, str]:
        return {r.rule: r.reason or "" for r in self.runs if r.status != "ok"}

    def __str__(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.states.items())) or "no alerts"
        ok = sum(r.status == "ok" for r in self.runs)
        return (f"evaluated {ok} of {len(self.runs)} rules at {self.at:%Y-%m-%d %H:%M:%S} UTC: "
                f"{states}; {sum(self.transitions.values())} changes, "
                f"{self.n_notifications} notifications queued")


def existing_relations(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Columns of every table and view in the main schema, by name."""
    rows = con.execute("select table_name, column_name from information_schema.columns "
                       "where table_schema = 'main'").fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def annotations_sql(rule: Rule) -> tuple[str, list[str]]:
    """SQL building the rule's annotations JSON from its templates, and its parameters."""
    args: list[str] = []
    params: list[str] = []
    for key, template in sorted(rule.annotations.items()):
        pieces = []
        params.append(key)
        for literal, column, spec in template_parts(template):
            if literal:
                pieces.append("?")
                params.append(literal)
            if column and spec:
                pieces.append(f"coalesce(format(?, {q(column)}), '')")
                params.append("{:" + spec + "}")
            elif column:
                pieces.append(f"coalesce(cast({q(column)} as varchar), '')")
        args.append(f"?, concat({', '.join(pieces) or repr('')})")
    return f"json_object({', '.join(args)})::varchar", params


def _collect(con: duckdb.DuckDBPyConnection, rule: Rule,
             relations: dict[str, set[str]]) -> RuleRun:
    t0 = time.perf_counter()
    run = RuleRun(rule.name, rule.source, "ok")
    columns = relations.get(rule.source)
    if columns is None:
        run.status, run.reason = "skipped", (f"source {rule.source} does not exist (its domain "
                                             "has not published it)")
        return run
    missing = [c for c in CONTRACT_COLUMNS if c not in columns]
    if missing:
        run.status, run.reason = "error", (f"source {rule.source} lacks the findings columns "
                                           f"{', '.join(missing)}")
        return run
    annotations, a_params = annotations_sql(rule)
    sql = (sql_text("candidates").replace("{source}", q(rule.source))
           .replace("{condition}", rule.condition).replace("{annotations}", annotations))
    identity = "\x1f".join(f"{k}={v}" for k, v in sorted(rule.labels.items()))
    rule_params = [rule.name, identity, json.dumps(rule.labels, sort_keys=True), rule.severity]
    try:
        run.n_matches = con.execute(sql, rule_params + a_params).fetchall()[0][0]
    except duckdb.Error as exc:
        run.status, run.reason = "error", f"condition failed: {str(exc).splitlines()[0]}"
        return run
    run.duration_ms = (time.perf_counter() - t0) * 1000
    return run


def evaluate(con: duckdb.DuckDBPyConnection, pack: RulePack, at: datetime, *,
             params: dict) -> Evaluation:
    """Evaluate ``pack`` at time ``at`` and advance every alert's lifecycle."""
    last = con.execute("select max(last_evaluated_at) from alerts").fetchall()[0][0]
    if last is not None and at < last:
        # time only moves forward; the line fits 120 columns after "tsfleet: error: "
        raise InvalidParameter(f"evaluation time {at:%Y-%m-%d %H:%M:%S} UTC is before the "
                               f"previous evaluation, {last:%Y-%m-%d %H:%M:%S} UTC")
    con.execute("create or replace temp table _alert_candidates as select * from "
                "(select null::varchar as rule, null::varchar as fingerprint, "
                "null::varchar as severity, null::varchar as domain, null::varchar as finding, "
                "null::varchar as subject_kind, null::varchar as subject_id, "
                "null::varchar as site, null::varchar as zone, null::double as value, "
                "null::varchar as labels, null::varchar as annotations, "
                "null::varchar as action, null::timestamp as due_at, "
                "null::timestamp as observed_at) where false")
    relations = existing_relations(con)
    runs = [_collect(con, rule, relations) for rule in pack.active]
    evaluated = {r.name: r for r in pack.active if _ok(runs, r.name)}
    # Rules that left the pack: their open alerts resolve (for 0, keep 0, no candidates).
    known = {r[0] for r in con.execute("select distinct rule from alerts").fetchall()}
    in_pack = {r.name for r in pack.active}
    gone = sorted(known - in_pack)
    rules = pa.table({
        "rule": list(evaluated) + gone,
        "for_s": [r.for_s for r in evaluated.values()] + [0] * len(gone),
        "keep_s": [r.keep_firing_for_s for r in evaluated.values()] + [0] * len(gone),
    })
    con.execute("create or replace temp table _alert_now as select * from _alert_candidates "
                f"qualify row_number() over (partition by fingerprint order by {_SEVERITY_RANK} "
                "desc, value desc nulls last, subject_id) = 1")
    con.register("_alert_rules_in", rules)
    try:
        con.execute("create or replace temp table _alert_rules as select * from _alert_rules_in")
    finally:
        con.unregister("_alert_rules_in")
    con.execute(sql_text("lifecycle"), {"at": at})
    result = _apply(con, at, params)
    result.runs = runs
    write_result(con, "alert_rule_runs", {
        "rule": [r.rule for r in runs], "source": [r.source for r in runs],
        "status": [r.status for r in runs], "reason": [r.reason for r in runs],
        "n_matches": [r.n_matches for r in runs], "duration_ms": [r.duration_ms for r in runs],
        "evaluated_at": pa.array([at] * len(runs), pa.timestamp("us")),
    }, params=params, computed_at=at)
    for name in ("_alert_candidates", "_alert_now", "_alert_rules", "_alert_next"):
        con.execute(f"drop table if exists {name}")
    return result


def _ok(runs: list[RuleRun], name: str) -> bool:
    return any(r.rule == name and r.status == "ok" for r in runs)


def _apply(con: duckdb.DuckDBPyConnection, at: datetime, params: dict) -> Evaluation:
    cols = ", ".join(q(c) for c in ALERT_COLUMNS)
    with transaction(con):
        transitions = con.execute(
            "select coalesce(prev_state, ''), state, count(*) from _alert_next "
            "where prev_state is distinct from state group by all").fetchall()
        con.execute(
            "insert into alert_history select fingerprint, rule, episode, ?, prev_state, state, "
            "severity, value, case when state = 'resolved' and starts_at is null "
            "then 'cleared before for: elapsed' end from _alert_next "
            "where prev_state is distinct from state", [at])
        con.execute("delete from alerts where rule in (select rule from _alert_rules)")
        con.execute(f"insert into alerts ({cols}, computed_at, params) select {cols}, ?, ? "
                    "from _alert_next", [at, json.dumps(params, default=str, sort_keys=True)])
        apply_silences(con, at)
        n_before = con.execute("select count(*) from notifications").fetchall()[0][0]
        con.execute(sql_text("outbox"), {"at": at})
        n_after = con.execute("select count(*) from notifications").fetchall()[0][0]
        states = con.execute("select state, count(*) from alerts group by all").fetchall()
    return Evaluation(at, [], Counter(dict(states)),
                      Counter({(a, b): n for a, b, n in transitions}), n_after - n_before)


def apply_silences(con: duckdb.DuckDBPyConnection, at: datetime) -> None:
    """Recompute which silence mutes each open alert at ``at`` (inside the caller's transaction)."""
    con.execute("update alerts set silenced_by = null where silenced_by is not null")
    con.execute(sql_text("silences"), {"at": at})
