"""Firmware: per-model release catalogs, an OSV feed, update campaigns, a bad
release and a few unauthorized changes, with the truth in ``sim.firmware_*``.

Every model has six versions in its vendor's own form, oldest first; index 3 is
never in the catalog. Catalog: 0 revoked, 1 deprecated, 2 approved, 4 target
(all hardware revisions), 5 target (only the model's first revision when it has
several). Devices start on 0, 1, 2 or 4. One campaign per model installs
version 5 on the compatible devices on 2 or 4: a fixed share fails (half of
those roll back), a few get stuck mid-update, the rest succeed. The Borealis
campaign fails often (it should be halted); the Acme TH-200 campaign also
reaches two devices of the incompatible revision; the Acme TH-200 release 5
raises battery drain 1.8x (``sk.extra['battery_drain_factor']``, an
(n_devices, n_hours) float32 multiplier of the discharge rate, for the power
generator) while every install "succeeds". Late in the period a few devices
change firmware on their own: an untargeted upgrade, a downgrade, the same
version with another image hash, a version missing from the catalog, and an
unparsable version string. Each device reports its firmware once a day.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import MODELS, Skeleton

#: Each model's versions, oldest first, in its vendor's form. Index 3 is off-catalog.
UNIVERSE: dict[str, list[str]] = {
    "TH-200": ["2.2.0", "2.3.0", "2.9.3", "2.9.4-beta.1", "2.10.0", "2.10.1"],
    "RH-310": ["1.01.000", "1.02.003", "1.02.010", "1.03.000", "1.09.001", "1.10.000"],
    "VB-9": ["3.0.9.880", "3.1.0.987", "3.1.0.1022", "3.1.2.1100", "3.2.0.1203", "3.10.0.15"],
    "PX-3": ["FW_2_9_0", "FW_3_0_0", "FW_3_2_1", "FW_3_2_2", "FW_3_10_0", "FW_4_0_0"],
    "GS-1": ["2023.10.1", "2023.10.1-hotfix2", "2024.02.1", "2024.05.01", "2024.11.1",
             "2025.03.1"],
    "TM-1d": ["R11A", "R12", "R12B", "R12C", "R13", "R13A"],
    "EM-4": ["V2.0.9_build12", "V2.1.0_build45", "V2.1.0_build52", "V2.1.1_build3",
             "V2.2.0_build7", "V2.10.0_build1"],
}
#: The scheme each model's versions follow (what detection should find).
SCHEME = {"TH-200": "semver", "RH-310": "dotted", "VB-9": "dotted", "PX-3": "underscore",
          "GS-1": "calver", "TM-1d": "letter", "EM-4": "build"}
OFF_CATALOG = 3
STATUS = {0: "revoked", 1: "deprecated", 2: "approved", 4: "target", 5: "target"}
START_IDX, START_P = np.array([0, 1, 2, 4]), np.array([0.03, 0.10, 0.27, 0.60])
FAIL_SHARE, STUCK_SHARE, BAD_FAIL_SHARE = 0.04, 0.03, 0.40
HALT_MODEL, DRAIN_MODEL, DRAIN_FACTOR = "VB-9", "TH-200", 1.8
#: LwM2M object 5 Update Result names used as failure reasons.
FAIL_REASONS = np.array(["not enough flash", "connection lost", "integrity check failure",
                         "update failed"], dtype=object)
UNAUTHORIZED_KINDS = ("untargeted", "downgrade", "hash_mismatch", "not_in_catalog",
                      "unparsable")
#: Vulnerable version indexes per model and advisory (what the OSV feed below says).
VULNERABLE = {"TH-200": {0: ["TSF-2026-0001"], 1: ["TSF-2026-0001"], 4: ["TSF-2026-0006"]},
              "VB-9": {1: ["TSF-2026-0002"], 2: ["TSF-2026-0002"], 3: ["TSF-2026-0002"]},
              "PX-3": {2: ["TSF-2026-0003"]},
              "GS-1": {0: ["TSF-2026-0004"], 1: ["TSF-2026-0004"]},
              "TM-1d": {4: ["TSF-2026-0005"], 5: ["TSF-2026-0005"]},
              "EM-4": {1: ["TSF-2026-0007"]}}


def image_hash(model: str, version: str) -> str:
    """The digest of a release image (deterministic)."""
    return hashlib.sha256(f"{model}:{version}".encode()).hexdigest()[:16]


def osv_feed(manufacturer_of: dict[str, str]) -> list[tuple[dict, bool, str | None]]:
    """The simulated OSV feed: ``(record, is_valid, reason)`` per record."""
    u = UNIVERSE

    def rec(num, model, severity, ranges=(), versions=(), score=None):
        affected = {"package": {"ecosystem": "tsfleet-firmware",
                                "name": f"{manufacturer_of.get(model, 'Zeta')}/{model}"}}
        if ranges:
            affected["ranges"] = list(ranges)
        if versions:
            affected["versions"] = list(versions)
        r = {"schema_version": "1.6.0", "id": f"TSF-2026-{num:04d}", "modified":
             "2026-05-01T00:00:00Z", "published": "2026-04-01T00:00:00Z",
             "summary": f"Simulated firmware flaw {num} in {model}", "affected": [affected],
             "database_specific": {"severity": severity}}
        if score is not None:
            r["severity"] = [{"type": "CVSS_V3", "score": str(score)}]
        return r

    def eco(*events, kind="ECOSYSTEM"):
        return {"type": kind, "events": [dict([e]) for e in events]}

    return [
        (rec(1, "TH-200", "HIGH", [eco(("introduced", "0"), ("fixed", u["TH-200"][2]))],
             score=7.5), True, None),
        (rec(2, "VB-9", "MODERATE", [eco(("introduced", u["VB-9"][1]),
                                         ("last_affected", u["VB-9"][3]))]), True, None),
        (rec(3, "PX-3", "CRITICAL", versions=[u["PX-3"][2]], score=9.8), True, None),
        (rec(4, "GS-1", "LOW", [eco(("introduced", "0"), ("fixed", u["GS-1"][4]),
                                    ("limit", u["GS-1"][2]))]), True, None),
        (rec(5, "TM-1d", "CRITICAL", [eco(("introduced", u["TM-1d"][4]))]), True, None),
        (rec(6, "TH-200", "HIGH", [eco(("introduced", "2.10.0"), ("fixed", "2.10.1"),
                                       kind="SEMVER")]), True, None),
        (rec(7, "EM-4", "MODERATE", [eco(("introduced", u["EM-4"][1]),
                                         ("fixed", u["EM-4"][2]))]), True, None),
        (rec(8, "ZZ-1", "HIGH", [eco(("introduced", "0"), ("fixed", "1.0.0"))]), True, None),
        (rec(900, "RH-310", "HIGH", [eco(("introduced", "0"), ("fixed", u["RH-310"][4]),
                                         ("last_affected", u["RH-310"][2]))]), False,
         "fixed_and_last_affected"),
        (rec(901, "VB-9", "HIGH", [eco(("introduced", "0"), ("fixed", "3.x"))]), False,
         "unparsable_version"),
    ]


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("firmware")
    d = sk.devices
    n, days, n_h = sk.n_devices, sk.config.days, sk.n_hours
    t0 = sk.hours[0]
    hour = np.timedelta64(3600, "s")
    model = d["model"].astype(str)
    hw = d["hardware_rev"].astype(str)
    revs = {m["model"]: m["hardware_revs"] for m in MODELS}
    manufacturer_of = {m["model"]: m["manufacturer"] for m in MODELS}

    # Catalog ------------------------------------------------------------------------
    cat = {k: [] for k in ("manufacturer", "model", "version", "released_at", "status",
                           "hardware_revs", "image_hash")}
    for m in MODELS:
        name = m["model"]
        for idx, status in STATUS.items():
            v = UNIVERSE[name][idx]
            cat["manufacturer"].append(m["manufacturer"])
            cat["model"].append(name)
            cat["version"].append(v)
            cat["released_at"].append(t0 - np.timedelta64(60 * (6 - idx), "D"))
            cat["status"].append(status)
            cat["hardware_revs"].append(m["hardware_revs"][0] if idx == 5
                                        and len(m["hardware_revs"]) > 1 else None)
            cat["image_hash"].append(image_hash(name, v))
    cat["released_at"] = np.array(cat["released_at"], dtype="datetime64[s]")
    out.add_rows("firmware_releases", {k: np.array(v, dtype=object) if k != "released_at"
                                       else v for k, v in cat.items()})

    # Initial versions; campaign participants ------------------------------------------
    start = rng.choice(START_IDX, size=n, p=START_P)
    compatible5 = np.array([len(revs[mo]) == 1 or h == revs[mo][0]
                            for mo, h in zip(model, hw, strict=True)])
    eligible = compatible5 & np.isin(start, [2, 4])
    mistarget = np.zeros(n, bool)
    wrong_rev = np.flatnonzero((model == DRAIN_MODEL) & ~compatible5 & np.isin(start, [2, 4]))
    mistarget[rng.choice(wrong_rev, size=min(2, len(wrong_rev)), replace=False)] = True
    in_campaign = eligible | mistarget
    outcome = np.full(n, "", dtype=object)
    for name in UNIVERSE:
        part = np.flatnonzero(in_campaign & (model == name) & ~mistarget)
        part = rng.permutation(part)
        share = BAD_FAIL_SHARE if name == HALT_MODEL else FAIL_SHARE
        n_fail = int(round(share * len(part)))
        n_stuck = max(1, int(round(STUCK_SHARE * len(part)))) if len(part) >= 3 else 0
        outcome[part] = "succeeded"
        outcome[part[:n_fail]] = "failed"
        outcome[part[:n_fail // 2]] = "rolled_back"
        outcome[part[n_fail:n_fail + n_stuck]] = "stuck"
    outcome[mistarget] = "succeeded"

    camp_start = t0 + np.timedelta64(int(days * 0.3 * 24), "h")
    sched = camp_start + (rng.uniform(0, 72, n) * 3600).astype("timedelta64[s]")
    steps = np.cumsum(np.stack([rng.uniform(0.5, 6, n), rng.uniform(0.2, 2, n),
                                rng.uniform(0.05, 0.5, n), rng.uniform(0.05, 0.3, n),
                                rng.uniform(0.3, 1, n)]), axis=0)
    step_at = sched[None, :] + (steps * 3600).astype("timedelta64[s]")
    stuck_state = rng.choice(["downloading", "updating"], size=n)
    reason = rng.choice(FAIL_REASONS, size=n)
    ev = {k: [] for k in ("campaign_id", "device_id", "event_at", "state", "target_version",
                          "reason")}
    target5 = np.array([UNIVERSE[mo][5] for mo in model], dtype=object)
    campaign = np.array([f"c-{mo.lower()}-{UNIVERSE[mo][5].lower()}" for mo in model],
                        dtype=object)

    def add(mask, at, state, why=None):
        idx = np.flatnonzero(mask)
        ev["campaign_id"].append(campaign[idx])
        ev["device_id"].append(d["device_id"][idx])
        ev["event_at"].append(at[idx])
        ev["state"].append(np.full(len(idx), state, dtype=object))
        ev["target_version"].append(target5[idx])
        ev["reason"].append(why[idx] if why is not None else np.full(len(idx), None, object))

    stuck = outcome == "stuck"
    add(in_campaign, sched, "scheduled")
    add(in_campaign, step_at[0], "downloading")
    ok_dl = in_campaign & ~(stuck & (stuck_state == "downloading"))
    add(ok_dl, step_at[1], "downloaded")
    add(ok_dl, step_at[2], "updating")
    add(np.isin(outcome, ["succeeded"]), step_at[3], "succeeded")
    add(np.isin(outcome, ["failed", "rolled_back"]), step_at[3], "failed", reason)
    add(outcome == "rolled_back", step_at[4], "rolled_back",
        np.full(n, "restored the previous image", dtype=object))
    out.add_rows("update_events", {k: np.concatenate(v) for k, v in ev.items()})
    succeeded_at = np.where(outcome == "succeeded", step_at[3], np.datetime64("NaT"))

    # Daily reports, unauthorized changes ----------------------------------------------
    report_at = (t0 + d["phase_s"].astype("timedelta64[s]"))[:, None] + \
        (np.arange(days) * 24 * hour)[None, :]                          # (n, days)
    idx_grid = np.broadcast_to(start[:, None], (n, days)).copy()
    upd = outcome == "succeeded"
    idx_grid[upd] = np.where(report_at[upd] >= succeeded_at[upd, None], 5, start[upd, None])
    hash_table = {(mo, i): image_hash(mo, UNIVERSE[mo][i]) for mo in UNIVERSE for i in range(6)}
    change_day = int(days * 0.6)
    clean = ~in_campaign
    picked: dict[str, np.ndarray] = {}
    taken = np.zeros(n, bool)
    per_kind = max(1, n // 400)
    wants = {"untargeted": [1, 2], "downgrade": [4], "hash_mismatch": [2, 4],
             "not_in_catalog": [2], "unparsable": [2, 4]}
    for kind in UNAUTHORIZED_KINDS:
        pool = np.flatnonzero(clean & ~taken & np.isin(start, wants[kind]))
        picked[kind] = rng.choice(pool, size=min(per_kind, len(pool)), replace=False)
        taken[picked[kind]] = True
    new_idx = {"untargeted": 4, "downgrade": 1, "not_in_catalog": OFF_CATALOG}
    for kind, devs in picked.items():
        if kind in new_idx:
            idx_grid[devs, change_day:] = new_idx[kind]
    versions = np.empty((n, days), dtype=object)
    hashes = np.empty((n, days), dtype=object)
    for mo in UNIVERSE:
        rows = model == mo
        table = np.array(UNIVERSE[mo], dtype=object)
        versions[rows] = table[idx_grid[rows]]
        hashes[rows] = np.array([hash_table[(mo, i)] for i in range(6)], dtype=object)[
            idx_grid[rows]]
    for dev in picked["hash_mismatch"]:
        hashes[dev, change_day:] = hashlib.sha256(f"tampered:{dev}".encode()).hexdigest()[:16]
    for dev in picked["unparsable"]:
        versions[dev, change_day:] = versions[dev, change_day - 1] + "~mod"
    out.add_rows("firmware_reports", dict(
        device_id=np.repeat(d["device_id"], days), reported_at=report_at.ravel(),
        version=versions.ravel(), image_hash=hashes.ravel()))

    # Battery drain of the bad release --------------------------------------------------
    factor = np.ones((n, n_h), dtype=np.float32)
    bad = np.flatnonzero(upd & (model == DRAIN_MODEL))
    hours_after = ((succeeded_at[bad] - t0) // hour).astype(int)
    cols = np.arange(n_h)[None, :]
    factor[bad] = np.where(cols >= hours_after[:, None], DRAIN_FACTOR, 1.0)
    sk.extra["battery_drain_factor"] = factor

    # Truth ------------------------------------------------------------------------------
    _truth(sk, out, rng, model, hw, start, idx_grid, in_campaign, mistarget, outcome, campaign,
           step_at, stuck_state, picked, change_day, report_at, manufacturer_of, compatible5)


def _truth(sk, out, rng, model, hw, start, idx_grid, in_campaign, mistarget, outcome, campaign,
           step_at, stuck_state, picked, change_day, report_at, manufacturer_of, compatible5):
    d = sk.devices
    n = sk.n_devices
    final = idx_grid[:, -1]                     # unparsable devices: the last valid version
    target = np.where(compatible5, 5, 4)
    vuln = [",".join(VULNERABLE.get(mo, {}).get(i, [])) for mo, i in zip(model, final,
                                                                          strict=True)]
    kind_of = np.full(n, None, dtype=object)
    for kind, devs in picked.items():
        kind_of[devs] = kind
    out.add_truth("firmware_devices", dict(
        device_id=d["device_id"], model=model.astype(object), hardware_rev=hw.astype(object),
        initial_version=np.array([UNIVERSE[mo][i] for mo, i in zip(model, start, strict=True)],
                                 dtype=object),
        final_version=np.array([UNIVERSE[mo][i] for mo, i in zip(model, final, strict=True)],
                               dtype=object),
        final_idx=final, target_version=np.array(
            [UNIVERSE[mo][i] for mo, i in zip(model, target, strict=True)], dtype=object),
        is_outdated=final < target, advisories=np.array(vuln, dtype=object),
        is_vulnerable=np.array([bool(v) for v in vuln]), is_incompatible=(final == 5)
        & ~compatible5, is_unknown=final == OFF_CATALOG, in_campaign=in_campaign,
        outcome=outcome, unauthorized=kind_of))
    rows = [(d["device_id"][dev], kind, report_at[dev, change_day])
            for kind, devs in picked.items() for dev in devs]
    out.add_truth("firmware_unauthorized", dict(
        device_id=np.array([r[0] for r in rows], dtype=object),
        kind=np.array([r[1] for r in rows], dtype=object),
        changed_at=np.array([r[2] for r in rows], dtype="datetime64[s]")))
    stuck = np.flatnonzero(outcome == "stuck")
    since = np.where(stuck_state[stuck] == "downloading", step_at[0, stuck], step_at[2, stuck])
    out.add_truth("firmware_stuck", dict(
        device_id=d["device_id"][stuck], campaign_id=campaign[stuck],
        state=stuck_state[stuck].astype(object), since=since))
    camps = {k: [] for k in ("campaign_id", "model", "target_version", "n_devices",
                             "n_failed", "n_stuck", "halt_expected")}
    for mo in UNIVERSE:
        part = in_campaign & (model == mo)
        if not part.any():
            continue
        n_failed = int(np.isin(outcome[part], ["failed", "rolled_back"]).sum())
        n_finished = int(np.isin(outcome[part], ["succeeded", "failed", "rolled_back"]).sum())
        camps["campaign_id"].append(campaign[part][0])
        camps["model"].append(mo)
        camps["target_version"].append(UNIVERSE[mo][5])
        camps["n_devices"].append(int(part.sum()))
        camps["n_failed"].append(n_failed)
        camps["n_stuck"].append(int((outcome[part] == "stuck").sum()))
        camps["halt_expected"].append(mo == HALT_MODEL and n_finished >= 10)
    out.add_truth("firmware_campaigns", camps)
    out.add_truth("firmware_bad_release", dict(
        manufacturer=[manufacturer_of[DRAIN_MODEL]], model=[DRAIN_MODEL],
        version=[UNIVERSE[DRAIN_MODEL][5]], drain_factor=[DRAIN_FACTOR]))
    feed = osv_feed(manufacturer_of)
    out.add_truth("osv_feed", dict(
        advisory_id=[r["id"] for r, _, _ in feed],
        record=[json.dumps(r, sort_keys=True) for r, _, _ in feed],
        is_valid=[ok for _, ok, _ in feed], reason=[why for _, _, why in feed]))
