"""``fleet.alerts``: evaluate rules, manage alerts and silences, plan and send work.

>>> from tsfleet import Fleet
>>> fleet = Fleet(memory=True)
>>> ev = fleet.alerts.evaluate(at=datetime(2026, 6, 1))
>>> ev.skipped      # no rule skipped: every domain publishes its findings, even when empty
{}
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tsfleet.alerts import evaluate as _evaluate
from tsfleet.alerts import tickets, webhook, workorders
from tsfleet.alerts.http import DEFAULT_POLICY, RetryPolicy
from tsfleet.alerts.ruleset import RESERVED_LABELS, RulePack, load_rules, parse_duration
from tsfleet.alerts.silences import parse_matcher
from tsfleet.clock import as_of
from tsfleet.errors import LINE_WIDTH, InvalidParameter, TsfleetError, suggest, unknown_name
from tsfleet.results import now_utc
from tsfleet.store import transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

STATES = ("pending", "firing", "acknowledged", "resolved")
OPEN_STATES = ("pending", "firing", "acknowledged")


class UnknownAlert(TsfleetError, KeyError):
    """A fingerprint that matches no alert."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Alerts:
    """Alert rules over every domain's findings, the alert lifecycle, work orders."""

    def __init__(self, fleet: Fleet, rules: str | Path | RulePack | None = None):
        self.fleet = fleet
        self.con = fleet.con
        self._rules = rules
        self._plan_tables = workorders.STORED    # a preview's, inside preview_work_orders

    # -- rules and evaluation ---------------------------------------------------------
    def rules(self, rules: str | Path | RulePack | None = None) -> RulePack:
        """The rule pack: ``rules`` (a file or a pack), else the one given at construction,
        else the built-in pack."""
        chosen = rules if rules is not None else self._rules
        return chosen if isinstance(chosen, RulePack) else load_rules(chosen)

    def evaluate(self, rules: str | Path | RulePack | None = None, *,
                 at: datetime | None = None, offline_k: float = 3.0) -> _evaluate.Evaluation:
        """Evaluate the rules once and advance every alert (pending, firing, acknowledged,
        resolved). ``at`` is the evaluation time (default now, UTC); when given it is also
        the clock of the offline check, otherwise that check uses the newest reading."""
        pack = self.rules(rules)
        when = at or now_utc()
        with self._clock(at, offline_k):
            return _evaluate.evaluate(self.con, pack, when, params={
                "rules": [r.name for r in pack.active], "offline_k": offline_k,
                "at": when.isoformat()})

    def offline(self, *, at: datetime | None = None, offline_k: float = 3.0,
                only_offline: bool = True) -> list[dict]:
        """Rows of the ``device_offline`` view as of ``at`` (default: the newest reading)."""
        with self._clock(at, offline_k):
            return self.fleet.query("select * from device_offline where is_offline or not ? "
                                    "order by silent_s desc, device_id", [only_offline])

    @contextmanager
    def _clock(self, at: datetime | None, offline_k: float):
        """Set the offline view's clock and k for the duration of the block."""
        if offline_k <= 0:
            raise InvalidParameter(f"offline_k must be > 0, got {offline_k}")
        self.con.execute("set variable tsfleet_offline_k = ?", [float(offline_k)])
        if at is not None:
            self.con.execute("set variable tsfleet_as_of = ?::timestamp", [at])
        try:
            yield
        finally:
            self.con.execute("reset variable tsfleet_as_of")
            self.con.execute("reset variable tsfleet_offline_k")

    def analyze(self) -> None:
        """Evaluate the rules and plan the work orders (what ``tsfleet demo`` runs)."""
        self.evaluate()
        self.plan_work_orders()

    def summary(self) -> list[str]:
        """Headlines from the alerts, rule runs and work orders tables."""
        states = dict(self.con.execute("select state, count(*) from alerts group by all")
                      .fetchall())
        runs = self.con.execute("select count(*) filter (where status = 'ok'), count(*) "
                                "from alert_rule_runs").fetchall()[0]
        lines = [f"{runs[0]} of {runs[1]} rules evaluated; "
                 f"{states.get('firing', 0)} alerts firing, {states.get('pending', 0)} pending, "
                 f"{states.get('acknowledged', 0)} acknowledged"]
        top = self.con.execute("select rule, count(*) n from alerts where state in "
                               "('firing', 'acknowledged') group by rule order by n desc, rule "
                               "limit 3").fetchall()
        if top:
            lines.append("most alerts: " + ", ".join(f"{r} ({n})" for r, n in top))
        # The work orders are the one maintenance plan, summarised with its instant by
        # the caller (the demo's "plan as of ..." line; tsfleet workorders).
        return lines

    # -- reading and acting on alerts -------------------------------------------------
    def list_alerts(self, states: Iterable[str] | None = OPEN_STATES, *,
                    rule: str | None = None, site: str | None = None) -> list[dict]:
        """Alerts in ``states`` (default the open ones; None: all), most severe first; a
        ``rule`` or ``site`` the store does not know raises InvalidParameter."""
        chosen = list(states) if states is not None else list(STATES)
        bad = [s for s in chosen if s not in STATES]
        if bad:
            raise InvalidParameter(f"unknown alert state {bad[0]!r}; expected one of "
                                   f"{', '.join(STATES)}")
        self.fleet.check_site(site, "alerts")
        if rule is not None:
            known = sorted({r.name for r in self.rules().rules} | {r["rule"] for r in
                           self.fleet.query("select distinct rule from alerts")})
            if rule not in known:
                raise unknown_name("alert rule", rule, known)
        return self.fleet.query(
            "select fingerprint, rule, state, severity, subject_kind, subject_id, site, zone, "
            "value, json_extract_string(annotations, '$.summary') as summary, episode, "
            "active_since, starts_at, ends_at, acknowledged_by, silenced_by, labels "
            "from alerts where list_contains(?, state) and (? is null or rule = ?) "
            "and (? is null or site = ?) order by case severity when 'critical' then 0 "
            "when 'warning' then 1 else 2 end, rule, subject_id, fingerprint",
            [chosen, rule, rule, site, site])

    def history(self, fingerprint: str | None = None) -> list[dict]:
        """State changes, oldest first (of one alert when ``fingerprint`` is given; a
        fingerprint of no alert raises UnknownAlert, as :meth:`ack` does)."""
        if fingerprint is not None and not self.fleet.query(
                "select 1 from alerts where fingerprint = ? union all "
                "select 1 from alert_history where fingerprint = ? limit 1",
                [fingerprint, fingerprint]):
            raise UnknownAlert(f"no alert with fingerprint {fingerprint!r}")
        return self.fleet.query(
            "select * from alert_history where ? is null or fingerprint = ? "
            "order by changed_at, fingerprint", [fingerprint, fingerprint])

    def ack(self, fingerprint: str, *, by: str | None = None,
            at: datetime | None = None) -> dict:
        """Acknowledge a firing alert: it stays acknowledged until it resolves."""
        when = at or now_utc()
        rows = self.fleet.query("select fingerprint, state, episode, rule, severity, value "
                                "from alerts where fingerprint = ?", [fingerprint])
        if not rows:
            raise UnknownAlert(f"no alert with fingerprint {fingerprint!r}")
        row = rows[0]
        if row["state"] != "firing":
            raise InvalidParameter(f"only a firing alert can be acknowledged; {fingerprint} "
                                   f"is {row['state']}")
        with transaction(self.con):
            self.con.execute("update alerts set state = 'acknowledged', acknowledged_at = ?, "
                             "acknowledged_by = ? where fingerprint = ?", [when, by, fingerprint])
            self.con.execute("insert into alert_history values (?, ?, ?, ?, 'firing', "
                             "'acknowledged', ?, ?, ?)",
                             [fingerprint, row["rule"], row["episode"], when, row["severity"],
                              row["value"], f"by {by}" if by else None])
        return {**row, "state": "acknowledged", "acknowledged_by": by}

    def silence(self, matchers: Iterable[str], *, duration: str | int = "2h",
                starts_at: datetime | None = None, ends_at: datetime | None = None,
                by: str | None = None, comment: str | None = None) -> str:
        """Mute alerts whose labels match every matcher (``site=plant-a``,
        ``alertname=~Battery.*``) from ``starts_at`` (default now) for ``duration`` or until
        ``ends_at``. Returns the silence id.

        A matcher's label must be one that alerts carry (those set from the finding, a
        rule's static labels, the labels of stored alerts): an unknown one is a typo that
        would mute nothing, and raises InvalidParameter naming the nearest label. Its
        value may match no alert yet: a silence also mutes alerts that fire later."""
        parsed = [parse_matcher(m) for m in matchers]
        if not parsed:
            raise InvalidParameter("a silence needs at least one matcher, e.g. site=plant-a")
        known = self.labels()
        for label, _, _ in parsed:
            if label not in known:
                text = f"no alert or rule has the label {label!r}"
                raise InvalidParameter(f"{text}; " + suggest(
                    label, known, LINE_WIDTH - len(text) - 2, "labels: "))
        start = starts_at or now_utc()
        try:
            end = ends_at or start + timedelta(seconds=_duration(duration))
        except OverflowError:
            raise InvalidParameter(f"a silence of {duration} would end after the year 9999; "
                                   "give a shorter duration") from None
        if end <= start:
            raise InvalidParameter(f"a silence must end after it starts; got {start} .. {end}")
        silence_id = "sil-" + uuid.uuid4().hex[:12]
        self.con.execute("insert into silences values (?, ?, ?, ?, ?, ?, ?)",
                         [silence_id, json.dumps([{"label": lb, "op": op, "value": v}
                                                  for lb, op, v in parsed]),
                          start, end, by, comment, now_utc()])
        self._refresh_silences(max(start, self._last_evaluation() or start))
        return silence_id

    def labels(self) -> list[str]:
        """The label names alerts carry: those every alert gets from its finding, the
        static labels of the rules, and any other label of a stored alert (a rules file
        evaluated earlier)."""
        names = set(RESERVED_LABELS) | {k for r in self.rules().rules for k in r.labels}
        names |= {r["name"] for r in self.fleet.query(
            "select distinct unnest(json_keys(labels)) as name from alerts")}
        return sorted(names)

    def expire_silence(self, silence_id: str, at: datetime | None = None) -> None:
        """End a silence now (or at ``at``)."""
        when = at or now_utc()
        n = self.con.execute("update silences set ends_at = least(ends_at, ?) "
                             "where silence_id = ? returning silence_id",
                             [when, silence_id]).fetchall()
        if not n:
            raise UnknownAlert(f"no silence with id {silence_id!r}")
        self._refresh_silences(when)

    def silences(self, active_at: datetime | None = None) -> list[dict]:
        """Silences, or those active at ``active_at``."""
        return self.fleet.query(
            "select * from silences where ?::timestamp is null or "
            "(starts_at <= ? and ? < ends_at) order by starts_at, silence_id",
            [active_at, active_at, active_at])

    def _last_evaluation(self) -> datetime | None:
        return self.con.execute("select max(last_evaluated_at) from alerts").fetchall()[0][0]

    def _refresh_silences(self, at: datetime) -> None:
        with transaction(self.con):
            _evaluate.apply_silences(self.con, at)

    # -- notifications and work orders ------------------------------------------------
    def notify(self, url: str, *, receiver: str = "tsfleet",
               group_by: Iterable[str] = ("alertname", "site"), max_alerts: int = 100,
               policy: RetryPolicy = DEFAULT_POLICY, at: datetime | None = None,
               sleep: Callable[[float], None] | None = None) -> webhook.SendReport:
        """Post owed notifications to an Alertmanager-style webhook (version 4 bodies)."""
        if max_alerts < 1:
            raise InvalidParameter(f"max_alerts must be >= 1, got {max_alerts}")
        return webhook.send_notifications(self.con, url, receiver=receiver,
                                          group_by=tuple(group_by), max_alerts=max_alerts,
                                          policy=policy, at=at or now_utc(), sleep=sleep)

    def push_alertmanager(self, url: str, *, at: datetime | None = None,
                          resend_s: float = 60.0, valid_s: float = 300.0,
                          generator: str = "http://tsfleet.invalid/alerts",
                          policy: RetryPolicy | None = None):
        """Push firing alerts (re-sent every ``resend_s``) and resolutions to Alertmanager's
        v2 API at ``url``; see :mod:`tsfleet.alerts.alertmanager`."""
        from tsfleet.alerts.alertmanager import push_alerts

        return push_alerts(self.con, url, at=at or now_utc(), resend_s=resend_s,
                           valid_s=valid_s, generator=generator, policy=policy)

    def notifications(self) -> list[dict]:
        """The outbox: every notice owed and its delivery state."""
        return self.fleet.query("select * from notifications order by created_at, "
                                "notification_id")

    def plan_work_orders(self, *, horizon_days: float = 30.0, at: datetime | None = None,
                         offline_k: float = 3.0) -> list[dict]:
        """Merge open findings with an action into one work order per site visit; returns
        the orders, each with its items. ``at`` is the planning instant and, when given,
        the clock of the offline check; by default it is now for a live store and the end
        of the data for a historical one (:func:`tsfleet.clock.as_of`). Overdue items join
        the next visit of their site; no visit is due before ``at``."""
        when = as_of(self.con, at).at
        with self._clock(at, offline_k):
            workorders.plan(self.con, when, horizon_days)
        return workorders.work_orders(self.con)

    @contextmanager
    def preview_work_orders(self, *, at: datetime, horizon_days: float = 30.0,
                            offline_k: float = 3.0) -> Iterator[None]:
        """Plan as of ``at`` without storing anything: inside the block,
        :meth:`work_orders` reads this preview; the stored plan, its ids and its ticket
        revisions stay as they are (a read-only store can preview).

        >>> with fleet.alerts.preview_work_orders(at=datetime(2030, 1, 1)):  # doctest: +SKIP
        ...     orders = fleet.alerts.work_orders()
        """
        with self._clock(at, offline_k), workorders.preview(self.con, at, horizon_days) as t:
            self._plan_tables = t
            try:
                yield
            finally:
                self._plan_tables = workorders.STORED

    def work_orders(self, site: str | None = None, *, flat: bool = False,
                    domain: str | None = None) -> list[dict]:
        """The planned work orders (nested items), or one flat row per item (of
        ``domain`` only, if given: the power or calibration view of the one plan); a ``site``
        the store does not know raises InvalidParameter. Inside
        :meth:`preview_work_orders`, the preview's."""
        self.fleet.check_site(site, "work_orders")
        if flat or domain:
            return workorders.work_order_rows(self.con, site, domain, self._plan_tables)
        return workorders.work_orders(self.con, site, self._plan_tables)

    def export_tickets(self, url: str, *, policy: RetryPolicy = DEFAULT_POLICY,
                       at: datetime | None = None,
                       sleep: Callable[[float], None] | None = None) -> webhook.SendReport:
        """Send each work order revision not yet delivered to a ticketing endpoint."""
        return tickets.export_tickets(self.con, url, at=at or now_utc(), policy=policy,
                                      sleep=sleep)


def _duration(value: str | int) -> int:
    """Seconds of a silence's duration: a positive one (``-1h``, ``0h`` would end it before
    it starts)."""
    negative = value.strip().startswith("-") if isinstance(value, str) else value < 0
    try:
        seconds = -1 if negative else parse_duration(value)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from exc
    if seconds <= 0:
        raise InvalidParameter(f"duration must be positive, like 30m, 2h or 1d; got {value!r}")
    return seconds
