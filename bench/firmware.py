"""Firmware benchmark: inventory and consistency views on a large fleet, the
ingest-time check of a live batch, and detection accuracy against the
simulator's truth and against naive baselines.

    PYTHONPATH=. python bench/firmware.py                        # 100,000 devices x 30 days
    PYTHONPATH=. python bench/firmware.py --devices 10000 --days 90
    PYTHONPATH=. python bench/firmware.py --health-only --health-seeds 7 8 9

Release health (post-update verdicts) needs battery readings and failure events, so it
runs on whole simulated fleets (``--health-fleet``, default 400 devices x 60 days) of
each ``--health-seeds``: the releases called unhealthy against the one the simulator
plants (a drain x1.8), beside the same view's rule without its sign tests (a share
rising past its limit, or a median drain ratio past its limit, on any number of
devices), computed in the same run from the same rows.

Only the firmware generator runs (no readings), so 100,000 devices fit in a
few minutes. Prints each figure and its ratio against the baseline.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np

from tsfleet import Fleet
from tsfleet.firmware.versions import parse
from tsfleet.simulate import SimConfig, SimFleet
from tsfleet.simulate import firmware as fwsim
from tsfleet.simulate.delivery import Delivered
from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import build_skeleton

VIEWS = {
    "firmware_current": "select * from firmware_current",
    "firmware_device_status": "select * from firmware_device_status",
    "firmware_distribution": "select * from firmware_distribution",
    "firmware_consistency": "select * from firmware_consistency",
}


def build(devices: int, days: int, seed: int) -> tuple[Fleet, float]:
    t0 = time.perf_counter()
    sk = build_skeleton(SimConfig(n_devices=devices, days=days, seed=seed))
    out = SimOutput()
    fwsim.generate(sk, out)
    sim = SimFleet(sk, out, Delivered(np.zeros(0, np.int16), [], np.zeros(0, np.int32),
                                      np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int32)))
    gen_s = time.perf_counter() - t0
    fleet = Fleet(memory=True)
    sim.write(fleet)
    return fleet, gen_s


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def naive_inventory(fleet: Fleet) -> dict:
    """Baseline: fetch all reports and build the same inventory in a Python loop."""
    rows = fleet.con.execute("select device_id, reported_at, version from firmware_reports"
                             ).fetchall()
    dev = {r[0]: r[1:] for r in fleet.con.execute(
        "select device_id, model, site from devices").fetchall()}
    latest: dict[str, tuple] = {}
    for device_id, at, version in rows:
        if device_id not in latest or at > latest[device_id][0]:
            latest[device_id] = (at, version)
    groups: dict[tuple, Counter] = defaultdict(Counter)
    for device_id, (_, version) in latest.items():
        model, site = dev[device_id]
        groups[(model, site)][version] += 1
    return {g: (c.most_common(1)[0], len(c)) for g, c in groups.items()}


def score(found: set, truth: set) -> str:
    tp = len(found & truth)
    return (f"found {tp}/{len(truth)}, false {len(found - truth)}, "
            f"missed {len(truth - found)}")


#: The release-health rule without its sign tests (the view before session 23): a share
#: rising past its limit, or the median drain ratio past its limit, decides alone.
NO_TEST = """
select manufacturer || ' ' || model || ' ' || version as release
from firmware_update_health cross join firmware_params p
where n_updated >= p.health_min_devices
  and (coalesce(n_with_battery >= p.health_min_devices
                and drain_ratio >= p.health_drain_ratio, false)
       or failure_share_after - failure_share_before >= p.health_failure_increase
       or silent_share_after - silent_share_before >= p.health_silent_increase)"""


def health(seeds: list[int], devices: int, days: int) -> None:
    """Release verdicts on whole simulated fleets against the planted bad release."""
    from tsfleet.simulate import simulated_fleet

    print(f"release health ({devices:,} devices x {days} days per seed; truth: "
          "sim.firmware_bad_release):")
    for seed in seeds:
        f = simulated_fleet(SimConfig(n_devices=devices, days=days, seed=seed))
        truth = {f"{r['manufacturer']} {r['model']} {r['version']}"
                 for r in f.query("select * from sim.firmware_bad_release")}
        ours = {r["release"] for r in f.query(
            "select manufacturer || ' ' || model || ' ' || version as release "
            "from firmware_update_health where verdict = 'unhealthy'")}
        plain = {r["release"] for r in f.query(NO_TEST)}
        judged = f.query("select count(*) filter (where verdict <> 'insufficient_data') "
                         "as n from firmware_update_health")[0]["n"]
        print(f"  seed {seed}: {judged} releases judged; tsfleet {score(ours, truth)}; "
              f"without the sign tests {score(plain, truth)}")
        f.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--health-seeds", type=int, nargs="*", default=[7, 8, 9],
                    help="seeds of the release-health fleets (none: skip them)")
    ap.add_argument("--health-fleet", type=int, nargs=2, default=[400, 60],
                    metavar=("DEVICES", "DAYS"), help="size of each release-health fleet")
    ap.add_argument("--health-only", action="store_true", help="only the release health")
    a = ap.parse_args()
    if a.health_only:
        health(a.health_seeds, *a.health_fleet)
        return
    print(f"firmware bench: {a.devices:,} devices x {a.days} days (seed {a.seed})")
    t0 = time.perf_counter()
    fleet, gen_s = build(a.devices, a.days, a.seed)
    n_rep = fleet.query("select count(*) as n from firmware_reports")[0]["n"]
    print(f"  generated in {gen_s:.1f} s; stored {n_rep:,} reports in "
          f"{time.perf_counter() - t0 - gen_s:.1f} s")
    t0 = time.perf_counter()
    fleet.firmware.analyze()
    print(f"  analyze (rank versions, OSV, check every report batch): "
          f"{time.perf_counter() - t0:.1f} s")

    print("views (best of 3, full result fetched as Arrow):")
    base_s, _ = timed(lambda: naive_inventory(fleet), repeat=1)
    for name, sql in VIEWS.items():
        s, table = timed(lambda sql=sql: fleet.con.sql(sql).to_arrow_table())
        flag = "ok" if s < 2 else "OVER 2 s"
        print(f"  {name:<24} {s * 1000:8.0f} ms  {table.num_rows:>9,} rows  {flag}")
    s, _ = timed(lambda: fleet.con.sql(VIEWS["firmware_consistency"]).to_arrow_table())
    print(f"  baseline: naive Python inventory loop {base_s * 1000:.0f} ms; "
          f"consistency view is {base_s / s:.1f}x faster")

    # Ingest-time check of a live batch: 200 routine reports and one unauthorized downgrade.
    at = fleet.query("select max(reported_at) + interval 1 hour as t from firmware_reports"
                     )[0]["t"]
    cur = fleet.query("select device_id, version, image_hash from firmware_current "
                      "where model = 'TH-200' and version = '2.10.0' limit 201")
    batch = [dict(device_id=r["device_id"], reported_at=at, version=r["version"],
                  image_hash=r["image_hash"]) for r in cur]
    batch[0]["version"] = "2.3.0"
    t0 = time.perf_counter()
    fleet.firmware.ingest_reports(batch)
    total = time.perf_counter() - t0
    check = fleet.query("select elapsed_ms from firmware_checked_batches "
                        "order by batch_id desc limit 1")[0]["elapsed_ms"]
    hit = fleet.query("select count(*) as n from firmware_security_events where device_id = ? "
                      "and kind = 'downgrade'", [batch[0]["device_id"]])[0]["n"]
    print(f"live batch of {len(batch)} reports: ingest + check {total * 1000:.0f} ms "
          f"(check {check:.0f} ms); downgrade raised: {bool(hit)}; "
          f"ratio vs the 1 h bar: {3600 / total:,.0f}x")

    print("accuracy against sim truth:")
    q = fleet.query

    def ids(sql):
        return {r[next(iter(r))] for r in q(sql)}

    def found(f):
        return ids(f"select subject_id from firmware_findings where finding = '{f}'")

    truth_u = ids("select device_id from sim.firmware_unauthorized")
    ev = ids("select device_id from firmware_security_events where device_id <> "
             f"'{batch[0]['device_id']}'")
    print(f"  unauthorized changes: {score(ev, truth_u)}")
    checks = [
        ("vulnerable devices", found("vulnerable"),
         "select device_id from sim.firmware_devices where is_vulnerable"),
        ("stuck updates", found("update_stuck"), "select device_id from sim.firmware_stuck"),
        ("incompatible", found("incompatible"),
         "select device_id from sim.firmware_devices where is_incompatible"),
        ("campaign halts", found("campaign_halt"),
         "select campaign_id from sim.firmware_campaigns where halt_expected"),
    ]
    for label, got, truth_sql in checks:
        print(f"  {label + ':':<22}{score(got, ids(truth_sql))}")
    truth_out = ids("select device_id from sim.firmware_devices where is_outdated")
    live = {batch[0]["device_id"]}
    print(f"  outdated:             {score(found('outdated') - live, truth_out)}")
    # Baseline: outdated by plain string comparison of version and target.
    rows = q("select device_id, final_version, target_version, model from sim.firmware_devices")
    naive = {r["device_id"] for r in rows if r["final_version"] < r["target_version"]}
    print(f"  baseline string comparison, outdated: {score(naive, truth_out)}")
    scheme = dict(fwsim.SCHEME)
    right = {r["device_id"] for r in rows
             if parse(r["final_version"], scheme[r["model"]])
             < parse(r["target_version"], scheme[r["model"]])}
    print(f"  tsfleet comparator on the same pairs:  {score(right, truth_out)}")
    fleet.close()
    if a.health_seeds:
        health(a.health_seeds, *a.health_fleet)


if __name__ == "__main__":
    main()
