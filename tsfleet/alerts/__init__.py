"""Alerts and maintenance: rules over every domain's findings, the alert lifecycle,
silences, work orders per site visit, webhook and ticket delivery."""

from tsfleet.alerts.api import Alerts, UnknownAlert
from tsfleet.alerts.http import RetryPolicy
from tsfleet.alerts.ruleset import Rule, RuleError, RulePack, load_rules, parse_rules

__all__ = ["Alerts", "RetryPolicy", "Rule", "RuleError", "RulePack", "UnknownAlert",
           "load_rules", "parse_rules"]
