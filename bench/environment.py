"""Benchmark of the environment analysis: speed and accuracy against the truth.

    PYTHONPATH=. python bench/environment.py                      # 2,000 devices x 90 days
    PYTHONPATH=. python bench/environment.py --devices 10000 --days 90 --db /tmp/env10k.duckdb

Prints the time of ``fleet.environment.analyze()`` and its ratio against a
naive per-device loop (each device's environment fetched and summarised on
its own, timed on a sample and scaled to the fleet), then the accuracy: the
injected effects against their CIs, the null factor, and the problem zones
among the top recommendations, next to the naive ranking of zones by their
raw failure rate.
"""

from __future__ import annotations

import argparse
import os
import time

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulate


def build(args) -> Fleet:
    if args.db and os.path.exists(args.db):
        fleet = Fleet(args.db)
        cfg = fleet.query("select * from sim.config")[0]
        if (cfg["n_devices"], cfg["days"], cfg["seed"]) == (args.devices, args.days, args.seed):
            print(f"reusing {args.db}")
            return fleet
        fleet.close()
        os.remove(args.db)
    t = time.perf_counter()
    sim = simulate(SimConfig(n_devices=args.devices, days=args.days, seed=args.seed))
    fleet = Fleet(args.db) if args.db else Fleet(memory=True)
    sim.write(fleet)
    print(f"built {args.devices} devices x {args.days} days ({sim.n_readings:,} readings) "
          f"in {time.perf_counter() - t:.0f} s")
    return fleet


def naive_per_device(fleet: Fleet, sample: int) -> float:
    """Seconds per device of a per-device loop: its zone monitors' readings, hourly
    means, interpolation and exposure summary in pandas, and its event count."""
    devs = [r["device_id"] for r in fleet.query(
        "select device_id from devices where device_type <> 'env_monitor' "
        "order by hash(device_id) limit ?", [sample])]
    t = time.perf_counter()
    for d in devs:
        df = fleet.frame(
            "select r.metric, date_trunc('hour', r.observed_at) as h, avg(r.value) as v "
            "from readings r join devices m using (device_id) "
            "where m.device_type = 'env_monitor' "
            "and m.zone = (select zone from devices where device_id = ?) "
            "and r.metric in ('temperature_c', 'humidity_pct', 'vibration_g') group by all", [d])
        if len(df):
            wide = df.pivot_table(index="h", columns="metric", values="v").asfreq("h")
            wide = wide.interpolate(limit=4, limit_area="inside")
            _ = (wide.mean(), (wide.get("temperature_c", wide.iloc[:, 0]) > 30).mean())
        fleet.query("select count(*) from device_events where device_id = ? "
                    "and event = 'failure'", [d])
    return (time.perf_counter() - t) / max(len(devs), 1)


def accuracy(fleet: Fleet) -> None:
    truth = fleet.query("select * from sim.environment_hazard where outcome = 'failure'")
    print("\neffect (failures)                  true      estimate  95% CI              "
          "p_adj     inside")
    for t in truth:
        if t["term"] == "age_years":
            continue
        rows = [r for r in fleet.environment.effects("glm_poisson", "failure")
                if r["factor"] == t["term"] and r["device_type"] == t["device_type"]]
        if not rows or rows[0].get("estimate") is None:
            print(f"  {t['term']:<30} not estimated")
            continue
        r = rows[0]
        inside = r["ci_low"] <= t["coefficient"] <= r["ci_high"]
        name = t["term"] + (f" [{t['device_type']}]" if t["device_type"] else "")
        null = ""
        if not t["coefficient"]:
            null = " (null factor: " + ("SIGNIFICANT)" if r["is_significant"] else
                                        "not significant)")
        print(f"  {name:<32} {t['coefficient']:8.3f}  {r['estimate']:8.3f}  "
              f"[{r['ci_low']:7.3f}, {r['ci_high']:7.3f}]  {r['p_adjusted']:.2g}  "
              f"{'yes' if inside else 'NO'}{null}")
    others = [r for r in fleet.environment.effects("glm_poisson", "failure")
              if r["factor"] == "humidity_pct" and r["device_type"] != "temp_humidity"
              and r["is_significant"]]
    print(f"  humidity significant for other types: {len(others)}")
    thr = fleet.query("select threshold_c from environment_model where outcome = 'failure' "
                      "and term = 'temperature_excess_c'")
    print(f"  temperature threshold: true 30, found {thr[0]['threshold_c'] if thr else None}")

    problems = {r["zone"] for r in fleet.query(
        "select zone from sim.environment_zones where is_problem and has_monitor_data")}
    recs = [r["zone"] for r in fleet.environment.recommendations()]
    k = len(problems)
    naive = [r["zone"] for r in fleet.query(
        "select d.zone, count(e.device_id) / count(distinct d.device_id) as rate "
        "from devices d left join device_events e on e.device_id = d.device_id "
        "and e.event = 'failure' where d.device_type <> 'env_monitor' "
        "group by d.zone order by rate desc")]
    p_ours = len(problems & set(recs[:k])) / k if k else float("nan")
    p_naive = len(problems & set(naive[:k])) / k if k else float("nan")
    print(f"\nproblem zones: {k}; recommended {len(recs)}; precision@{k}: ours {p_ours:.2f}, "
          f"naive raw-rate ranking {p_naive:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", default=None, help="keep the simulated store here and reuse it")
    ap.add_argument("--sample", type=int, default=100, help="devices timed in the naive loop")
    args = ap.parse_args()
    fleet = build(args)
    fleet.con.execute("set enable_progress_bar = false")
    fleet.environment  # import outside the timing  # noqa: B018
    t = time.perf_counter()
    fleet.environment.analyze()
    took = time.perf_counter() - t
    n = fleet.query("select count(*) as n from devices where device_type <> 'env_monitor'")[0]["n"]
    per = naive_per_device(fleet, args.sample)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nanalyze(): {took:.1f} s for {args.devices} devices x {args.days} days "
          f"(target <= 30 s at 10,000 x 90); load average {load} (1/5/15 min)")
    print(f"naive per-device loop: {per * 1000:.0f} ms/device -> {per * n:.0f} s for {n} devices "
          f"(exposure only); ratio {per * n / took:.1f}x")
    print("  steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                  fleet.environment.timings.items()))
    for line in fleet.environment.summary():
        print("  " + line)
    accuracy(fleet)
    fleet.close()


if __name__ == "__main__":
    main()
