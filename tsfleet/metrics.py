"""``fleet.metrics``: declare a metric, and re-ingest what waited for it.

A reading of a metric that is neither in ``metric_catalog`` nor in
``metric_aliases`` is quarantined with reason ``unknown_metric``, raw JSON
and all. Declaring the metric (``fleet.metrics.add(...)``, or ingest kind
``metrics``) records it in ``metric_declarations``, adds it to
``metric_catalog`` (name, unit, physical range) and re-ingests those
readings through the ordinary ingest path: nothing is lost, and a reading
outside the declared range goes back to quarantine as ``out_of_range``. A reading
quarantined as ``out_of_range`` is tried again once its metric is declared anew
(a wider range, another unit): it lands if the new declaration admits it.

>>> from tsfleet import Fleet
>>> fleet = Fleet(memory=True)
>>> fleet.ingest("readings", [{"device_id": "fl-1", "observed_at": "2026-03-01T10:00Z",
...                            "metric": "flow_lpm", "value": 12.5}]).n_quarantined
1
>>> fleet.metrics.add("flow_lpm", "l/min", 0, 500, drift_tolerance_pct=2).n_accepted
1
>>> fleet.query("select metric, value from readings")
[{'metric': 'flow_lpm', 'value': 12.5}]
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd

from tsfleet.errors import InvalidParameter
from tsfleet.ingest import IngestReport

#: Quarantined readings whose metric is known now (in the catalog or an alias). Rows of
#: ingest keep their raw text in quarantine_rows (only live payloads' are in text_pieces).
_WAITING = """
    from quarantine_rows q
    where q.kind = 'readings' and q.reason in (select unnest(?)) and q.batch_id <= ?
      and (json_extract_string(q.raw, '$.metric') is null
           or lower(json_extract_string(q.raw, '$.metric')) in
              (select metric from metric_catalog union all select alias from metric_aliases))
"""

#: Readings quarantined as out of range before their metric (or the metric an alias names)
#: was declared (again): the declaration may admit them now. A reading that fails again
#: is quarantined anew, after the declaration, so it is not tried again until the next one.
_REDECLARED = """
    from quarantine_rows q
    where q.kind = 'readings' and q.reason = 'out_of_range' and q.batch_id <= ?
      and exists (
          select 1 from metric_declarations d
          where d.batch_id > q.batch_id
            and d.metric = coalesce(
                (select a.metric from metric_aliases a
                 where a.alias = lower(json_extract_string(q.raw, '$.metric'))),
                lower(json_extract_string(q.raw, '$.metric'))))
"""


class Metrics:
    """Declared metrics of a :class:`~tsfleet.fleet.Fleet`."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.con = fleet.con
        self.last_retry = IngestReport("readings", "quarantine")

    def add(self, metric: str, unit: str, min_value: float, max_value: float, *,
            drift_tolerance_pct: float | None = None, min_scale: float | None = None,
            quantity: str | None = None, description: str | None = None,
            is_environmental: bool | None = None) -> IngestReport:
        """Declare (or redeclare) a metric; returns the report of the readings re-ingested
        from quarantine. ``is_environmental``: the environment monitors' readings of it are
        an environmental factor of ``fleet.environment``. A redeclaration that would change
        the unit of a built-in metric, or of one whose readings are stored, raises
        InvalidParameter (docs/calibration.md, "Declaring metrics")."""
        if not min_value < max_value:
            raise InvalidParameter(f"min_value must be below max_value, got {min_value} and "
                                   f"{max_value} for metric {metric}")
        report = self.fleet.ingest("metrics", [dict(
            metric=metric, unit=unit, min_value=min_value, max_value=max_value,
            drift_tolerance_pct=drift_tolerance_pct, min_scale=min_scale, quantity=quantity,
            description=description, is_environmental=is_environmental)],
            label="fleet.metrics.add")
        if report.n_quarantined:
            row = self.fleet.query("select reason, detail from quarantine where kind = 'metrics' "
                                   "order by quarantined_at desc limit 1")[0]
            raise InvalidParameter(f"metric {metric} was not declared: {row['detail']}")
        if not report.n_accepted:      # declared as before: the hook did not run
            self.on_ingest(report)
        return self.last_retry

    def on_ingest(self, report: IngestReport) -> None:
        """Ingest hook of kind ``metrics``: copy the declarations into metric_catalog,
        then re-ingest the readings that waited for them. A built-in metric keeps its unit
        (the declaration's is the same by meaning: ingest checked it) and stays within its
        physical range (a declaration stored before ingest checked that is held to it),
        and keeps its quantity and description unless the declaration gives them."""
        self.con.execute(
            "insert or replace into metric_catalog (metric, unit, quantity, min_value, "
            "max_value, description) select * from (select lower(d.metric) as metric, "
            "coalesce(b.unit, d.unit) as unit, coalesce(d.quantity, b.quantity, d.metric), "
            "greatest(d.min_value, b.min_value) as lo, least(d.max_value, b.max_value) as hi, "
            "coalesce(d.description, b.description, 'declared by a user') "
            "from metric_declarations d left join metric_builtins b on b.metric = lower(d.metric)"
            ") where lo < hi")
        self.last_retry = self.retry_quarantine()

    def retry_quarantine(self, reasons: Sequence[str] = ("unknown_metric",)) -> IngestReport:
        """Re-ingest quarantined readings with one of ``reasons`` whose metric is known now,
        and those quarantined as ``out_of_range`` before their metric was declared (again),
        then drop them from quarantine (a row that fails again is quarantined anew)."""
        reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        top = self.con.execute("select coalesce(max(batch_id), 0) from quarantine").fetchall()[0][0]
        report = IngestReport("readings", "quarantine")
        for where, params in ((_WAITING, [reasons, top]), (_REDECLARED, [top])):
            report.add(self._retry(where, params))
        return report

    def _retry(self, where: str, params: list) -> IngestReport:
        """Re-ingest the quarantined readings ``where`` selects, then drop them from quarantine."""
        raw = self.con.execute(f"select q.raw {where}", params).fetchall()
        report = IngestReport("readings", "quarantine")
        if not raw:
            return report
        frame = pd.read_json(io.StringIO("\n".join(r[0] for r in raw)), lines=True,
                             dtype=False)
        long = frame["metric"].notna() if "metric" in frame else pd.Series(False, frame.index)
        for part in (frame[long].dropna(axis=1, how="all"),
                     frame[~long].dropna(axis=1, how="all")):
            if len(part):
                report.add(self.fleet.ingest("readings", part.reset_index(drop=True),
                                             label="quarantine retry"))
        self.con.execute(f"delete {where}", params)
        return report
