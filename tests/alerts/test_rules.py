"""Rules as data: the built-in pack, user packs, and malformed files rejected by name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsfleet.alerts import RuleError, load_rules, parse_rules
from tsfleet.alerts.ruleset import parse_duration

RULE = """
[[rule]]
name = "{name}"
source = "power_findings"
condition = "{condition}"
{extra}
"""


def rule_text(name="Low", condition="finding = 'battery_low'", extra=""):
    return RULE.format(name=name, condition=condition, extra=extra)


def test_builtin_pack_covers_every_domain_and_offline():
    pack = load_rules()
    sources = {r.source for r in pack.rules}
    assert sources == {"power_findings", "firmware_findings", "calibration_findings",
                       "environment_findings", "network_findings", "alerts_findings"}
    names = {r.name for r in pack.rules}
    for wanted in ("BatteryCritical", "BatteryDaysToEmpty", "FirmwareVulnerable",
                   "FirmwareUnauthorized", "FirmwareUpdateStuck", "CalibrationDrifting",
                   "EnvironmentalStress", "GatewayOverloaded", "GatewayDown",
                   "GatewaySinglePointOfFailure", "DeviceOffline"):
        assert wanted in names
    assert all(r.keep_firing_for_s > 0 for r in pack.rules)  # every rule has hysteresis


@pytest.mark.parametrize(("text", "expected"), [
    (rule_text(extra='for = "5 minutes"'), "rule 'Low': field 'for': expected a duration"),
    (rule_text(extra='keep_firing_for = -3'), "rule 'Low': field 'keep_firing_for'"),
    (rule_text(extra='severity = "urgent"'), "rule 'Low': field 'severity'"),
    (rule_text(extra='colour = "red"'), "rule 'Low': field 'colour': Extra inputs"),
    (rule_text(condition="finding = "), "rule 'Low': field 'condition': not a valid SQL"),
    (rule_text(condition="nosuchcolumn > 3"), "rule 'Low': field 'condition'"),
    (rule_text(condition="true; drop table alerts"), "rule 'Low': field 'condition': must be one"),
    (rule_text(extra='annotations = { summary = "{device} down" }'),
     "rule 'Low': field 'annotations': annotation 'summary': unknown field {device}"),
    (rule_text(extra='annotations = { summary = "{value:.q}" }'),
     "rule 'Low': field 'annotations': annotation 'summary': bad format spec"),
    (rule_text(extra='labels = { severity = "x" }'), "rule 'Low': field 'labels'"),
    (rule_text(name="3bad"), "rule '3bad': field 'name'"),
    ('[[rule]]\nname = "NoSource"\n', "rule 'NoSource': field 'source': is required"),
    ('[[rule]]\nsource = "x"\n', "rule #1: field 'name': is required"),
    (rule_text() + rule_text(), "rule 'Low': field 'name': defined more than once"),
    ("[[rule]\n", "not valid TOML"),
])
def test_malformed_rule_files_are_rejected_naming_rule_and_field(text, expected):
    with pytest.raises(RuleError) as info:
        parse_rules(text, "my.toml")
    assert str(info.value).startswith("my.toml: ")
    assert expected in str(info.value)


def test_a_user_pack_replaces_or_extends_the_builtin_one(tmp_path):
    own = tmp_path / "rules.toml"
    own.write_text(rule_text(name="Only"))
    assert [r.name for r in load_rules(own).rules] == ["Only"]
    own.write_text("include_builtin = true\n" + rule_text(name="DeviceOffline",
                                                          extra='keep_firing_for = "0s"'))
    pack = load_rules(own)
    offline = [r for r in pack.rules if r.name == "DeviceOffline"]
    assert len(offline) == 1 and offline[0].keep_firing_for_s == 0
    assert len(pack.rules) == len(load_rules().rules)


def test_a_rule_naming_a_code_its_domain_does_not_declare_is_refused():
    """A rule that can never fire (a guessed synonym of a real code) fails the loader."""
    with pytest.raises(RuleError, match=r"rule 'Low'.*power does not emit: battery_empty"):
        parse_rules(rule_text(condition="finding in ('battery_critical', 'battery_empty')"))
    # A rule over the user's own view is the user's business.
    own = rule_text(condition="finding = 'anything'").replace("power_findings", "my_view")
    assert parse_rules(own).rules[0].source == "my_view"


def test_missing_rules_file_is_a_clear_error(tmp_path):
    with pytest.raises(RuleError, match="cannot read rules file"):
        load_rules(tmp_path / "nope.toml")


@given(st.integers(0, 40), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_durations_parse_to_seconds(d, h, m, s):
    text = "".join(f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if n) or "0s"
    assert parse_duration(text) == d * 86400 + h * 3600 + m * 60 + s


@pytest.mark.parametrize("bad", ["", "h", "1y", "5 m", True, -1, None, "1h2d"])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)
