"""Release health (``firmware_update_health``) on the independent firmware fleet
(bench/independent/firmware_health.py), beside the same view's rule without its sign
tests (``NO_TEST`` of bench/firmware.py), computed in the same run from the same rows.

    PYTHONPATH=. python bench/firmware_health.py                 # seeds 1 2 3, 600 devices
    PYTHONPATH=. python bench/firmware_health.py --seeds 4 --rows  # the held-out seed

Per seed: the releases judged (not insufficient_data), found/false/missed against the
generator's truth, per mechanism (drain, failure, silence), and false verdicts split into
neutral releases with fewer than 20 succeeded devices and the rest. ``--rows`` prints
each release's row (n_updated, ratios, shares, p-values) beside its truth.
"""

from __future__ import annotations

import argparse
import time

from bench.firmware import NO_TEST
from bench.independent.firmware_health import generate, load_into
from tsfleet import Fleet

MECHANISMS = ("drain", "failure", "silence")


def desc(t) -> str:
    """A release's truth: its mechanism and size."""
    if t.mechanism == "silence":
        return f"silence, {t.factor:.0%} drop within a week"
    return "none" if t.mechanism == "none" else f"{t.mechanism} x{t.factor:.2f}"


def fired(r: dict, p: dict, tested: bool) -> list[str]:
    """The criteria that hold for a release's row (with or without their sign tests)."""
    out = []
    if (r["n_with_battery"] >= p["health_min_devices"] and r["drain_ratio"] is not None
            and r["drain_ratio"] >= p["health_drain_ratio"]
            and (not tested or r["drain_p"] < 0.05)):
        out.append("drain")
    if (r["failure_share_after"] - r["failure_share_before"] >= p["health_failure_increase"]
            and (not tested or r["failure_p"] < 0.05)):
        out.append("failure")
    if (r["silent_share_after"] - r["silent_share_before"] >= p["health_silent_increase"]
            and (not tested or r["silent_p"] < 0.05)):
        out.append("silence")
    return out


def run(seed: int, devices: int, rows: bool) -> None:
    t0 = time.perf_counter()
    gen = generate(devices, seed)
    fleet = Fleet(memory=True)
    load_into(fleet, gen)
    truth = {f"{r.manufacturer} {r.model} {r.version}": r for r in gen.releases.itertuples()}
    health = {f"{r['manufacturer']} {r['model']} {r['version']}": r
              for r in fleet.firmware.health()}
    ours = {k for k, r in health.items() if r["verdict"] == "unhealthy"}
    plain = {r["release"] for r in fleet.query(NO_TEST)}
    p = fleet.query("select * from firmware_params")[0]
    judged = sum(r["verdict"] != "insufficient_data" for r in health.values())
    bad = {k for k, t in truth.items() if t.mechanism != "none"}
    secs = time.perf_counter() - t0
    print(f"seed {seed}: {len(health)} releases with succeeded devices, {judged} judged "
          f"({secs:.0f} s)")
    for name, found in (("tsfleet", ours), ("without the sign tests", plain)):
        per = []
        for m in MECHANISMS:
            k = next(k for k in bad if truth[k].mechanism == m)
            how = ("missed" if k not in found else
                   f"found by {'+'.join(fired(health[k], p, name == 'tsfleet')) or '?'}")
            per.append(f"{m} {how} ({desc(truth[k])})")
        per = ", ".join(per)
        false = found - bad
        small = {k for k in false if truth[k].n_succeeded < 20}
        print(f"  {name}: found {len(found & bad)}/{len(bad)}, false {len(false)} "
              f"({len(small)} on < 20 devices), missed {len(bad - found)}; {per}")
        for k in sorted(false):
            r = health[k]
            print(f"    false: {k} ({desc(truth[k])}; n_updated {r['n_updated']}, drain x"
                  f"{r['drain_ratio'] or 0:.2f} p {r['drain_p']:.2g}, failures "
                  f"{r['failure_share_before']:.2f} -> {r['failure_share_after']:.2f} p "
                  f"{r['failure_p']:.2g}, silent {r['silent_share_before']:.2f} -> "
                  f"{r['silent_share_after']:.2f} p {r['silent_p']:.2g})")
    if rows:
        cols = ("n_updated", "n_with_battery", "drain_ratio", "drain_p", "failure_share_before",
                "failure_share_after", "failure_p", "silent_share_before",
                "silent_share_after", "silent_p")
        print("    " + " | ".join(("release", "truth", *cols, "verdict")))
        for k, r in sorted(health.items()):
            t = truth[k]
            tr = desc(t)
            vals = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols]
            print("    " + " | ".join((k, tr + (" pilot" if t.is_pilot else ""), *vals,
                                      r["verdict"])))
    fleet.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--devices", type=int, default=600)
    ap.add_argument("--rows", action="store_true", help="print every release's row")
    a = ap.parse_args()
    for seed in a.seeds:
        run(seed, a.devices, a.rows)


if __name__ == "__main__":
    main()
