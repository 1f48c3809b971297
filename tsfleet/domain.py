"""The domain contract, written once: what every analysis domain is and promises.

A domain is one package (``tsfleet.power``, ``tsfleet.firmware``, ...) whose object
``fleet.<name>`` has ``analyze()``. Its :class:`DomainSpec` in :data:`DOMAINS` says
what the service, the CLI and ``Fleet`` need to know, so that nothing is guessed from
names or signatures:

- ``subset``: the keyword ``analyze`` narrows a run with (``devices``, ``gateways``) so
  that an incremental run recomputes only what has new data, or None (always in full);
- ``findings_view``: the view it publishes in the findings contract
  (:data:`tsfleet.alerts.ruleset.CONTRACT_COLUMNS`);
- the finding codes it may emit, declared with their severity and meaning in
  ``sql/finding_codes.csv`` and loaded into the store's ``finding_codes`` table;
- ``shares_ingest_tables``: its analysis writes tables that ingest writes too (firmware:
  its ingest hook keeps ``firmware_device_state`` and the security events). ``tsfleet
  serve`` runs every other analysis on a thread and connection of its own, beside ingest
  (:mod:`tsfleet.service.worker`); such a one runs on the writer thread between two
  batches, so that it can never conflict with a batch.

:func:`run_domain` runs one domain and returns a :class:`RunResult`: what ran, how
many items, the findings opened and closed, the time taken. The order of
:data:`DOMAINS` is the run order: the alert rules read the others' findings.

>>> [d.name for d in DOMAINS]
['firmware', 'power', 'calibration', 'environment', 'network', 'alerts']
>>> declared_codes()["power"]["battery_critical"].severity
'critical'
"""

from __future__ import annotations

import csv
import importlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tsfleet.store import codes_path

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet


class Domain(Protocol):
    """What ``fleet.<name>`` offers the service: one analysis run, writing its results."""

    def analyze(self, *args: Any, **kwargs: Any) -> Any: ...

    def summary(self) -> list[str]: ...


@dataclass(frozen=True)
class DomainSpec:
    """One registered domain."""

    name: str
    module: str                  #: the package whose ``class_name`` is ``fleet.<name>``
    class_name: str
    subset: Literal["devices", "gateways"] | None
    findings_view: str
    description: str
    #: its analysis writes tables ingest writes (see the module docstring)
    shares_ingest_tables: bool = False

    def build(self, fleet: Fleet) -> Domain:
        return getattr(importlib.import_module(self.module), self.class_name)(fleet)


#: Every domain, in run order.
DOMAINS: tuple[DomainSpec, ...] = (
    DomainSpec("firmware", "tsfleet.firmware", "Firmware", None, "firmware_findings",
               "Firmware inventory, catalog findings, campaigns and compliance.",
               shares_ingest_tables=True),
    DomainSpec("power", "tsfleet.power", "Power", "devices", "power_findings",
               "Battery analysis: discharge, forecasts, criticality, replacement plan."),
    DomainSpec("calibration", "tsfleet.calibration", "Calibration", "devices",
               "calibration_findings", "Sensor drift, outliers, calibration registry and "
               "schedule."),
    DomainSpec("environment", "tsfleet.environment", "Environment", None,
               "environment_findings", "Environmental exposure, failure correlation, "
               "envelopes and stress."),
    DomainSpec("network", "tsfleet.network", "Network", "gateways", "network_findings",
               "Gateway distribution, load, redundancy and rebalancing."),
    DomainSpec("alerts", "tsfleet.alerts", "Alerts", None, "alerts_findings",
               "Alert rules, lifecycle, work orders and notifications."),
)
BY_NAME: dict[str, DomainSpec] = {d.name: d for d in DOMAINS}
#: findings view -> domain name
FINDINGS_VIEWS: dict[str, str] = {d.findings_view: d.name for d in DOMAINS}


@dataclass(frozen=True)
class FindingCode:
    """One code a domain may emit in its findings view."""

    domain: str
    code: str
    severity: str
    meaning: str


@cache
def declared_codes() -> dict[str, dict[str, FindingCode]]:
    """domain -> code -> :class:`FindingCode`, from ``sql/finding_codes.csv``."""
    out: dict[str, dict[str, FindingCode]] = {d.name: {} for d in DOMAINS}
    with codes_path().open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["domain"], {})[row["code"]] = FindingCode(**row)
    return out


_EQ = re.compile(r"\bfinding\s*==?\s*'([^']*)'", re.I)
_IN = re.compile(r"\bfinding\s+(?:not\s+)?in\s*\(([^)]*)\)", re.I)


def codes_named(condition: str) -> list[str]:
    """The finding codes a rule condition compares ``finding`` with.

    >>> codes_named("finding in ('battery_low', 'depleting_soon') and value < 20")
    ['battery_low', 'depleting_soon']
    """
    named = _EQ.findall(condition)
    for group in _IN.findall(condition):
        named += re.findall(r"'([^']*)'", group)
    return named


def undeclared_codes(source: str, condition: str) -> list[str]:
    """Codes a rule over a domain's findings view names that the domain does not declare
    (a rule over any other view is the user's own and is not checked)."""
    domain = FINDINGS_VIEWS.get(source)
    if domain is None:
        return []
    declared = declared_codes().get(domain, {})
    return [c for c in codes_named(condition) if c not in declared]


@dataclass
class RunResult:
    """One domain run: what ran, on how many items, what it changed, how long it took."""

    analysis: str
    status: str                  #: ok, failed, skipped
    duration_s: float
    n_items: int | None = None   #: items analysed (devices, gateways); None: the whole fleet
    error: str | None = None
    incremental: bool = False
    n_findings: int | None = None    #: open findings after the run
    n_opened: int | None = None      #: findings present after the run and not before
    n_closed: int | None = None      #: findings present before the run and not after
    n_conflicts: int = 0             #: attempts rolled back after a write conflict, re-run
    #: a distributed run (``engine="dask"``): bucket -> one-line error of each bucket that
    #: failed twice (the other buckets' results were attached); None on one node
    failed_buckets: dict[int, str] | None = None


def run_domain(fleet: Fleet, spec: DomainSpec, items: Sequence[str] | None = None
               ) -> RunResult:
    """Run ``spec``'s analysis, narrowed to ``items`` when given and the domain declares a
    subset; raises what the domain raises. The service's runner records the run and
    fills in the findings it opened and closed (:mod:`tsfleet.service.runner`)."""
    domain = getattr(fleet, spec.name)
    t0 = time.perf_counter()
    incremental = items is not None and spec.subset is not None
    if incremental:
        done = domain.analyze(**{spec.subset: list(items)})
        n_items = len(items)
        if isinstance(done, int) and done > n_items:
            n_items = done   # the domain widened the incremental run (power: a refit)
    else:
        domain.analyze()
        n_items = None
    return RunResult(spec.name, "ok", time.perf_counter() - t0, n_items, None, incremental)
