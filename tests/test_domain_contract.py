"""The domain contract, checked on every registered domain (tsfleet.domain.DOMAINS).

One discovering test instead of a copy per domain: each domain's findings view has
the contract's columns and types, every code it emits is declared in
``sql/finding_codes.csv`` (and in the store's ``finding_codes``), and every code an
alert rule names is declared, so a rule that can never fire is caught.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tsfleet.alerts import load_rules
from tsfleet.alerts.ruleset import CONTRACT_COLUMNS
from tsfleet.domain import DOMAINS, FINDINGS_VIEWS, codes_named, declared_codes
from tsfleet.simulate import SimConfig, simulated_fleet


@pytest.fixture(scope="module")
def analysed():
    fleet = simulated_fleet(SimConfig(n_devices=150, days=40, seed=23))
    runs = fleet.analyze(force=True)
    yield fleet, runs
    fleet.close()


@pytest.mark.parametrize("spec", DOMAINS, ids=[d.name for d in DOMAINS])
def test_each_domain_runs_and_publishes_its_findings_in_the_contract(analysed, spec):
    fleet, runs = analysed
    run = next(r for r in runs if r.analysis == spec.name)
    assert run.status == "ok", run.error
    domain = getattr(fleet, spec.name)
    assert type(domain).__name__ == spec.class_name
    assert callable(domain.analyze) and callable(domain.summary)
    cols = fleet.query("select column_name, data_type from information_schema.columns "
                       "where table_name = ? order by ordinal_position", [spec.findings_view])
    # The contract's columns first, in order; a domain may add its own after them.
    assert [(c["column_name"], c["data_type"]) for c in cols][:len(CONTRACT_COLUMNS)] == list(
        CONTRACT_COLUMNS.items())
    rows = fleet.query(f"select * from {spec.findings_view}")
    assert run.n_findings == len({(r["finding"], r["subject_kind"], r["subject_id"])
                                  for r in rows})
    assert {r["domain"] for r in rows} <= {spec.name}
    assert {r["severity"] for r in rows} <= {"info", "warning", "critical"}
    emitted = {r["finding"] for r in rows}
    undeclared = emitted - set(declared_codes()[spec.name])
    assert not undeclared, f"{spec.name} emits codes not in sql/finding_codes.csv: {undeclared}"
    assert all(r["summary"] and r["subject_id"] for r in rows)


def test_the_simulated_fleet_exercises_most_declared_codes(analysed):
    """Not a tautology: the fleet above emits findings of every domain but alerts'."""
    fleet, _ = analysed
    for spec in DOMAINS[:-1]:
        n = fleet.query(f"select count(*) as n from {spec.findings_view}")[0]["n"]
        assert n > 0, spec.name


def test_the_store_holds_the_declared_codes(analysed):
    fleet, _ = analysed
    stored = {(r["domain"], r["code"]): r["severity"]
              for r in fleet.query("select * from finding_codes")}
    declared = {(d, c): fc.severity for d, codes in declared_codes().items()
                for c, fc in codes.items()}
    assert stored == declared
    assert {d for d, _ in declared} == {d.name for d in DOMAINS}
    assert set(stored.values()) <= {"info", "warning", "critical"}


def test_every_code_a_builtin_rule_names_is_declared_for_its_source():
    pack = load_rules()
    assert pack.rules
    for rule in pack.rules:
        domain = FINDINGS_VIEWS[rule.source]
        named = codes_named(rule.condition)
        assert named, f"{rule.name} names no finding code"
        assert set(named) <= set(declared_codes()[domain]), rule.name


def test_an_incremental_run_reports_the_findings_it_opened_and_closed(analysed):
    fleet, _ = analysed
    # A device at a healthy level reports 1 % hourly for three more days: battery_critical.
    device = fleet.query("select device_id from battery_forecast where level_now_pct > 50 "
                         "order by device_id limit 1")[0]["device_id"]
    last = fleet.query("select max(observed_at) as t from readings where device_id = ?",
                       [device])[0]["t"]
    fleet.ingest("readings", [{"device_id": device, "observed_at": last + timedelta(hours=h),
                               "metric": "battery_pct", "value": 1} for h in range(1, 73)])
    run = fleet.analyze("power")[0]
    assert run.status == "ok" and run.incremental and run.n_items >= 1
    assert run.n_opened >= 1
    assert fleet.query("select count(*) as n from power_findings where subject_id = ? and "
                       "finding = 'battery_critical'", [device])[0]["n"] == 1
