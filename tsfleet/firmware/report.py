"""The compliance report a security auditor can file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsfleet.results import now_utc
from tsfleet.rows import Rows

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet


def compliance_report(fleet: Fleet, grouping: str) -> dict:
    """Groups with their consistency, every non-compliant device with its reasons,
    and the open findings, as of the store's newest firmware fact."""
    params = fleet.query("select * from firmware_params")[0]
    devices = fleet.query(
        "select device_id, manufacturer, model, hardware_rev, site, zone, version, image_hash, "
        "reported_at, target_version, release_status, is_outdated, is_vulnerable, advisories, "
        "max_severity, is_incompatible, is_unknown, "
        "concat_ws('; ', case when is_vulnerable then 'vulnerable: ' || advisories end, "
        "case when is_incompatible then 'incompatible with hardware rev ' || hardware_rev end, "
        "case when is_unknown then 'not in catalog' end, "
        "case when is_revoked then 'revoked release' end, "
        "case when is_outdated then 'behind target ' || target_version end, "
        "case when device_id in (select device_id from firmware_security_open "
        "  where kind in ('untargeted', 'downgrade', 'hash_mismatch', 'unparsable')) "
        "  then 'unauthorized change' end) as reasons "
        "from firmware_device_status where version is not null order by device_id")
    non_compliant = Rows((d for d in devices if d["reasons"]), devices.columns)
    groups = fleet.query("select * exclude (grouping) from firmware_consistency "
                         "where grouping = ? order by manufacturer, model, group_value",
                         [grouping])
    findings = fleet.query("select * from firmware_findings order by severity, finding, "
                           "subject_id")
    return {
        "report": "tsfleet firmware compliance",
        "generated_at": now_utc(),
        "as_of": params["as_of"],
        "grouping": grouping,
        "n_devices": len(devices),
        "n_compliant": len(devices) - len(non_compliant),
        "compliant_pct": round(100 * (len(devices) - len(non_compliant)) / len(devices), 2)
        if devices else None,
        "groups": groups,
        "non_compliant_devices": non_compliant,
        "findings": findings,
        "settings": {k: v for k, v in params.items() if k != "as_of"},
    }
