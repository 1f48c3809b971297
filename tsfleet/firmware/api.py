"""``fleet.firmware``: the firmware domain's entry object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tsfleet.errors import InvalidParameter, unknown_name
from tsfleet.firmware.advisories import evaluate_advisories, load_osv
from tsfleet.firmware.catalog import sync_versions
from tsfleet.firmware.checks import CheckResult, check_reports, unchecked_batches
from tsfleet.firmware.osv_packages import DEFAULT_FEED
from tsfleet.firmware.report import compliance_report
from tsfleet.firmware.versions import get_scheme
from tsfleet.ingest import IngestReport
from tsfleet.results import now_utc
from tsfleet.store import transaction
from tsfleet.words import plural

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

GROUPINGS = ("model_site", "model_zone", "model_hardware_rev", "model")
DIMENSIONS = ("model", "hardware_rev", "site", "zone")
#: Ingest kinds whose arrival changes what the firmware checks see.
WATCHED_KINDS = ("firmware_reports", "firmware_releases", "update_events")


def _label(what: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(f"{what} must be a non-empty string, got {value!r}")
    return value


class Firmware:
    """Firmware inventory, catalog and OSV findings, ingest-time security checks,
    update campaigns and compliance, on one fleet store.

    >>> from tsfleet import Fleet
    >>> fleet = Fleet(memory=True)
    >>> _ = fleet.ingest("devices", [dict(device_id="th-1", device_type="t", manufacturer="Acme",
    ...                  model="TH-200", site="s", zone="z")])
    >>> _ = fleet.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200",
    ...                  version="2.10.0", status="target")])
    >>> fleet.firmware.ingest_reports([dict(device_id="th-1", reported_at="2026-06-01T00:00Z",
    ...                                     version="2.9.0")]).n_accepted
    1
    >>> [e["kind"] for e in fleet.firmware.security_events()]
    ['not_in_catalog']
    """

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.con = fleet.con

    # -- configuration -----------------------------------------------------------------
    def configure(self, **settings: float) -> dict[str, float]:
        """Change thresholds of the firmware views (see ``firmware_settings``); returns all."""
        known = {r["name"] for r in self.fleet.query("select name from firmware_settings")}
        for name, value in settings.items():
            if name not in known:
                raise InvalidParameter(f"unknown firmware setting {name!r}; expected one of "
                                       f"{', '.join(sorted(known))}")
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidParameter(f"firmware setting {name} must be a number >= 0, "
                                       f"got {value!r}")
        self.fleet.require_writable()
        for name, value in settings.items():
            self.con.execute("update firmware_settings set value = ? where name = ?",
                             [float(value), name])
        return {r["name"]: r["value"] for r in self.fleet.query(
            "select name, value from firmware_settings order by name")}

    def set_scheme(self, manufacturer: str, scheme: str, model: str = "*",
                   note: str | None = None) -> None:
        """Read the versions of ``manufacturer``'s ``model`` (``*``: all its models) with
        ``scheme`` instead of the detected one, and re-rank them."""
        get_scheme(scheme)
        self.fleet.require_writable()
        self.con.execute("insert or replace into firmware_schemes values (?, ?, ?, ?, ?)",
                         [manufacturer, model, scheme, note, now_utc()])
        sync_versions(self.con, full=True)
        evaluate_advisories(self.con)

    # -- data in -----------------------------------------------------------------------
    def load_osv(self, source: object, feed: str = DEFAULT_FEED) -> IngestReport:
        """Load an OSV feed (file, folder, JSON text, dict or list of records) under the
        label ``feed`` and judge every known version against it; invalid records go
        to quarantine. The feed's package names map to models by
        :meth:`map_osv_package` rules, else by the convention ``<manufacturer>/<model>``."""
        self.fleet.require_writable()
        sync_versions(self.con)
        report = load_osv(self.con, source, feed=_label("feed", feed))
        evaluate_advisories(self.con)
        return report

    def map_osv_package(self, package: str, manufacturer: str, model: str = "*",
                        ecosystem: str = "*", feed: str = "*",
                        note: str | None = None, known_only: bool = False) -> list[dict]:
        """Read OSV package ``package`` (of ``ecosystem``, in feed ``feed``; ``*``: any)
        as ``manufacturer``'s ``model`` (``*``: every model of the manufacturer), and
        re-judge the stored advisories. Returns every rule.

        A rule may name a model ahead of its devices. With ``known_only`` (the CLI), a
        manufacturer or model that no device and no release of the store has is a typo:
        InvalidParameter names the nearest one, and nothing is stored.

        >>> from tsfleet import Fleet
        >>> fleet = Fleet(memory=True)
        >>> [r["package"] for r in fleet.firmware.map_osv_package("th200-fw", "Acme", "TH-200")]
        ['th200-fw']
        """
        for what, value in (("package", package), ("manufacturer", manufacturer),
                            ("model", model), ("ecosystem", ecosystem), ("feed", feed)):
            _label(what, value)
        if known_only:
            self._check_model(manufacturer, model)
        self.fleet.require_writable()
        self.con.execute("insert or replace into firmware_osv_packages values "
                         "(?, ?, ?, ?, ?, ?, ?)",
                         [feed, ecosystem, package, manufacturer, model, note, now_utc()])
        evaluate_advisories(self.con)
        return self.osv_packages()

    def _check_model(self, manufacturer: str, model: str) -> None:
        """``manufacturer`` and ``model`` (unless ``*``) are those of a device or a
        release in the store, else InvalidParameter with the nearest name."""
        makers = ("devices", "firmware_releases")
        self.fleet.check_known("manufacturer", manufacturer, makers)
        if model == "*":
            return
        known = [r["model"] for r in self.fleet.query(" union ".join(
            f"select model from {t} where manufacturer = ? and model is not null"
            for t in makers) + " order by 1", [manufacturer] * len(makers))]
        if model not in known:
            raise unknown_name(f"{manufacturer} model", model, known)

    def osv_packages(self) -> list[dict]:
        """The package mapping rules (``firmware_osv_packages``)."""
        return self.fleet.query("select * from firmware_osv_packages "
                                "order by package, feed, ecosystem, manufacturer, model")

    def ingest_reports(self, source: Any, **kw: Any) -> IngestReport:
        """Ingest firmware reports and check them at once (see :meth:`check_reports`)."""
        report = self.fleet.ingest("firmware_reports", source, **kw)
        self.on_ingest(report)
        return report

    def on_ingest(self, report: IngestReport) -> CheckResult | None:
        """The post-ingest hook: check new firmware reports right away; re-rank versions
        when the catalog or the campaigns changed. Other kinds are ignored."""
        if report.kind not in WATCHED_KINDS or not report.n_accepted:
            return None
        if report.kind == "firmware_reports":
            return check_reports(self.con, report.batch_ids)
        sync_versions(self.con, full=report.kind == "firmware_releases")
        if report.kind == "firmware_releases":
            evaluate_advisories(self.con)
        return None

    def check_reports(self, batch_ids: list[int] | None = None) -> CheckResult:
        """Raise security events for the firmware reports of ``batch_ids`` (default:
        every batch not checked yet). Returns what was found."""
        self.fleet.require_writable()
        return check_reports(self.con, unchecked_batches(self.con) if batch_ids is None
                             else list(batch_ids))

    # -- analysis ----------------------------------------------------------------------
    def analyze(self, osv: object | None = None) -> None:
        """Rank all versions, load ``osv`` if given (a demo store loads its simulated
        feed from ``sim.osv_feed`` once), judge the advisories, check unchecked reports.

        The post-update health is then computed from the readings when read: the rows a
        distributed run stored (``firmware_device_health``) are dropped, and
        ``firmware_health_source`` is cleared (see :mod:`tsfleet.scaleout.plan`)."""
        self.rank_and_check(osv)
        with transaction(self.con):
            self.con.execute("delete from firmware_health_source")
            self.con.execute("delete from firmware_device_health")

    def rank_and_check(self, osv: object | None = None) -> None:
        """The steps of :meth:`analyze` that write what ingest writes too (version ranks,
        advisories, the checks of unchecked report batches): what a distributed run keeps
        on the store's writer."""
        self.fleet.require_writable()
        sync_versions(self.con, full=True)
        if osv is not None:
            load_osv(self.con, osv)
        elif self._has_sim_feed() and not self._count("firmware_advisories"):
            feed = [r[0] for r in self.con.execute("select record from sim.osv_feed").fetchall()]
            load_osv(self.con, "[" + ",".join(feed) + "]")
        evaluate_advisories(self.con)
        self.check_reports()

    def figures(self) -> dict[str, Any]:
        """The key figures of the views, one record: devices reporting a version, model
        versions, the share on their target release (%), devices vulnerable, outdated,
        incompatible and on a version missing from the catalog, devices with unauthorized
        firmware changes (and the first), update campaigns, stuck updates and campaigns to
        halt, and unhealthy releases (the one on the most devices first). Counts are 0 and
        the rest None before any firmware report.
        ``tsfleet firmware analyze --format table|csv|json`` prints it."""
        return self._headline()[0]

    def summary(self) -> list[str]:
        """Headline lines for ``tsfleet demo`` (the sentences of :meth:`figures`)."""
        return self._headline()[1]

    def _headline(self) -> tuple[dict[str, Any], list[str]]:
        lines = []
        st = self.fleet.query(
            "select count(*) filter (where version is not null) as n, "
            "count(distinct model || version) as n_versions, "
            "count(*) filter (where target_rank is not null and version_rank = target_rank) "
            "as n_target, count(*) filter (where is_vulnerable) as n_vuln, "
            "count(*) filter (where is_outdated) as n_out, "
            "count(*) filter (where is_incompatible) as n_inc, "
            "count(*) filter (where is_unknown) as n_unknown from firmware_device_status")[0]
        sec = self.fleet.query(
            "select count(distinct subject_id) as n, min(subject_id) as first "
            "from firmware_findings where finding = 'unauthorized'")[0]
        camp = self.fleet.query(
            "select count(*) as n, sum(n_stuck) as stuck, count(*) filter (where "
            "recommend_halt) as n_halt, string_agg(campaign_id, ', ') filter (where "
            "recommend_halt) as halt from firmware_campaign_progress")[0]
        # the releases on the most devices first (in a fixed order: the summary is read
        # run after run, and ties are broken by name)
        bad = self.fleet.query("select manufacturer || ' ' || model || ' ' || version as v, "
                               "reasons from firmware_update_health where verdict = 'unhealthy' "
                               "order by n_updated desc, v")
        n = st["n"] or 0
        figures = {"devices": n, "model_versions": st["n_versions"] if n else 0,
                   "on_target_pct": round(100 * st["n_target"] / n, 1) if n else None,
                   "vulnerable": st["n_vuln"] or 0, "outdated": st["n_out"] or 0,
                   "incompatible": st["n_inc"] or 0,
                   "unknown_versions": st["n_unknown"] or 0,
                   "unauthorized_devices": sec["n"] or 0,
                   "first_unauthorized_device": sec["first"],
                   "campaigns": camp["n"] or 0, "stuck_updates": camp["stuck"] or 0,
                   "campaigns_to_halt": camp["n_halt"] or 0,
                   "unhealthy_releases": len(bad),
                   "top_unhealthy_release": bad[0]["v"] if bad else None}
        if not n:
            return figures, ["no firmware reports"]
        lines.append(f"{plural(st['n'], 'device')} on {plural(st['n_versions'], 'model version')}; "
                     f"{100 * st['n_target'] / st['n']:.0f}% on their target release")
        lines.append(f"{st['n_vuln']} vulnerable, {st['n_out']} outdated, "
                     f"{st['n_inc']} incompatible, {st['n_unknown']} on versions missing "
                     f"from the catalog")
        if sec["n"]:
            lines.append(f"{plural(sec['n'], 'device')} with unauthorized firmware changes "
                         f"raised at ingest; first: {sec['first']}")
        if camp["n"]:
            lines.append(f"{camp['n']} update campaigns, {camp['stuck'] or 0} stuck updates"
                         + (f"; halt {camp['halt']}" if camp["halt"] else ""))
        for row in bad[:2]:
            lines.append(f"unhealthy release {row['v']}: {row['reasons']}")
        if len(bad) > 2:
            lines.append(f"{len(bad) - 2} more unhealthy release{'s' if len(bad) > 3 else ''}: "
                         "tsfleet firmware health")
        return figures, lines

    # -- reads -------------------------------------------------------------------------
    def inventory(self, device_id: str | None = None) -> list[dict]:
        """Each device's version, target and flags (``firmware_device_status``)."""
        if device_id is None:
            return self.fleet.query("select * from firmware_device_status order by device_id")
        return self.fleet.query("select * from firmware_device_status where device_id = ?",
                                [device_id])

    def distribution(self, dimension: str = "model") -> list[dict]:
        """Devices per version by ``model``, ``hardware_rev``, ``site`` or ``zone``."""
        if dimension not in DIMENSIONS:
            raise InvalidParameter(f"dimension must be one of {', '.join(DIMENSIONS)}, "
                                   f"got {dimension!r}")
        return self.fleet.query(
            "select * exclude (dimension) from firmware_distribution where dimension = ? "
            "order by manufacturer, model, group_value, version_rank desc nulls last, version",
            [dimension])

    def consistency(self, grouping: str = "model_site") -> list[dict]:
        """Share on the majority and target version, distinct versions and deviating
        devices per group (``model_site``, ``model_zone``, ``model_hardware_rev``, ``model``)."""
        if grouping not in GROUPINGS:
            raise InvalidParameter(f"grouping must be one of {', '.join(GROUPINGS)}, "
                                   f"got {grouping!r}")
        return self.fleet.query(
            "select * exclude (grouping) from firmware_consistency where grouping = ? "
            "order by manufacturer, model, group_value", [grouping])

    def campaigns(self) -> list[dict]:
        """Progress, rates and halt recommendation per campaign."""
        return self.fleet.query("select * from firmware_campaign_progress order by campaign_id")

    def stuck(self) -> list[dict]:
        """Devices stuck in an update state longer than ``stuck_after_hours``."""
        return self.fleet.query("select * from firmware_campaign_devices where is_stuck "
                                "order by campaign_id, device_id")

    def health(self) -> list[dict]:
        """Post-update health verdict per installed version."""
        return self.fleet.query("select * from firmware_update_health "
                                "order by manufacturer, model, version")

    def findings(self) -> list[dict]:
        """The open firmware findings (``firmware_findings``)."""
        return self.fleet.query("select * from firmware_findings "
                                "order by finding, subject_id")

    def security_events(self, open_only: bool = True) -> list[dict]:
        """Unexpected changes raised at ingest (only those still holding, by default)."""
        rel = "firmware_security_open" if open_only else "firmware_security_events"
        return self.fleet.query(f"select * from {rel} order by device_id, first_reported_at, "
                                "kind")

    def compliance_report(self, grouping: str = "model_site") -> dict:
        """A compliance report for an auditor: groups, deviating devices, findings."""
        if grouping not in GROUPINGS:
            raise InvalidParameter(f"grouping must be one of {', '.join(GROUPINGS)}, "
                                   f"got {grouping!r}")
        return compliance_report(self.fleet, grouping)

    # -- helpers -----------------------------------------------------------------------
    def _count(self, table: str) -> int:
        return self.con.execute(f"select count(*) from {table}").fetchall()[0][0]

    def _has_sim_feed(self) -> bool:
        return bool(self.con.execute(
            "select count(*) from information_schema.tables where table_schema = 'sim' "
            "and table_name = 'osv_feed'").fetchall()[0][0])
