"""Which fleet models an OSV package name stands for, per feed.

A feed names its packages its own way (``curl`` in ``Debian:12``, ``acme-th200-fw``
in a vendor's own ecosystem). Rows of ``firmware_osv_packages`` map a
``(feed, ecosystem, package)`` to a ``(manufacturer, model)``; ``*`` as feed or
ecosystem matches any, and model ``*`` stands for every known model of the
manufacturer. The most specific rows win: an exact feed before ``*``, then an
exact ecosystem before ``*``; one package may map to several models. A name
without rows is read by the convention ``<manufacturer>/<model>``; a name
without rows and without a ``/`` maps to nothing.

>>> m = PackageMap([PackageRule("*", "*", "th200-fw", "Acme", "TH-200"),
...                 PackageRule("vendor", "*", "th200-fw", "Acme", "TH-200B")])
>>> m.targets("other", "Zephyr", "th200-fw"), m.targets("vendor", "Zephyr", "th200-fw")
((('Acme', 'TH-200'),), (('Acme', 'TH-200B'),))
>>> m.targets("other", "", "Edge/TM-1d"), m.targets("other", "", "curl")
((('Edge', 'TM-1d'),), ())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

WILDCARD = "*"
DEFAULT_FEED = "default"

Model = tuple[str, str]


@dataclass(frozen=True)
class PackageRule:
    """One row of ``firmware_osv_packages``."""

    feed: str
    ecosystem: str
    package: str
    manufacturer: str
    model: str

    def specificity(self, feed: str, ecosystem: str) -> int | None:
        """How closely this rule matches (higher wins), or None when it does not."""
        if self.feed not in (feed, WILDCARD) or self.ecosystem not in (ecosystem, WILDCARD):
            return None
        return 2 * (self.feed != WILDCARD) + (self.ecosystem != WILDCARD)


class PackageMap:
    """The package rules of a store and the models they may name."""

    def __init__(self, rules: Iterable[PackageRule], models: Iterable[Model] = ()):
        self.rules: dict[str, list[PackageRule]] = {}
        for rule in rules:
            self.rules.setdefault(rule.package, []).append(rule)
        self.models = sorted(set(models))

    def targets(self, feed: str, ecosystem: str, package: str) -> tuple[Model, ...]:
        """The ``(manufacturer, model)`` pairs ``package`` of ``ecosystem`` stands for
        in ``feed``; empty when it stands for none."""
        scored = [(s, r) for r in self.rules.get(package, ())
                  if (s := r.specificity(feed, ecosystem)) is not None]
        if not scored:
            man, slash, model = package.partition("/")
            return ((man, model),) if slash and man and model else ()
        best = max(s for s, _ in scored)
        found: set[Model] = set()
        for s, r in scored:
            if s != best:
                continue
            if r.model == WILDCARD:
                found.update(m for m in self.models if m[0] == r.manufacturer)
            else:
                found.add((r.manufacturer, r.model))
        return tuple(sorted(found))


def load_package_map(con: duckdb.DuckDBPyConnection) -> PackageMap:
    """The rules of ``firmware_osv_packages`` with the models known to the store."""
    rules = [PackageRule(*row) for row in con.execute(
        "select feed, ecosystem, package, manufacturer, model from firmware_osv_packages"
    ).fetchall()]
    models = con.execute("select manufacturer, model from devices union "
                         "select manufacturer, model from firmware_releases").fetchall()
    return PackageMap(rules, [tuple(m) for m in models])
