"""A second firmware fleet for post-update release health, generated apart from
``tsfleet.simulate`` (nothing imported from it; no constant of the health verdict was
chosen on this fleet, and this file's constants were fixed before tsfleet was run on it).

Its devices, rollouts and faults differ on purpose from tsfleet's simulator:

* three vendors' models, each with its own version strings (semver ``4.2.0``, calver
  ``25.02.1``, build numbers ``B1214``) and device types: a valve actuator (indoor),
  an outdoor flow meter and a rooftop gas sensor;
* per model four main releases, each rolled out in staggered waves over three weeks
  (a canary wave of 5 % with at least 5 devices, then 15 %, 30 % and the rest of the
  release's coverage, 45-90 % of the model), plus one pilot release rolled out to 5-20
  devices only; a device is updated at most once in 14 days; campaigns go through the
  documented ``update_events`` states (scheduled, downloading, downloaded, updating,
  then succeeded, or failed, or failed then rolled_back), with deferrals of hours to
  days between scheduling and download;
* battery_pct from a *linear* coulomb-counter gauge (reading = 100 - used x (1 + the
  gauge's capacity error)), quantised to 1 % (rounded on some gauges, truncated on
  others); reporting every 15 min to 6 h, battery in every report at 1 h and slower,
  in every fourth one faster; per-device packet loss of 1-15 %;
* drain (%/day) per device: a log-normal base, steps of the duty cycle on random days,
  and a season: the outdoor meters drain more in the cold (history from mid-January
  into May, so their drain falls through every release's windows) and the rooftop
  sensors drain more in the heat (their drain rises in spring); a battery that runs
  below 4 % is replaced (a ``battery_replaced`` event on most devices);
* a background ``failure`` hazard per device type, Weibull in the device's age (infant
  mortality for the valves, constant for the meters, wear-out for the gas sensors) with
  a per-device gamma frailty, so some devices fail before any update and some fail
  repeatedly; a third of failures take the device off the air for 12-72 h;
* background outages (a Poisson process, log-normal durations, some longer than a day).

Per seed, three main releases (on any model) are truly bad, each by one mechanism that
lasts while the device runs it (a later release fixes it): ``drain`` multiplies the
device's drain by a factor drawn in [1.3, 2.5]; ``failure`` multiplies the failure hazard
by a factor drawn in [3, 6]; ``silence`` makes devices drop off the network for 26-72 h
at a daily hazard such that 20-50 % (drawn) drop within a week. Every other release is
neutral, the pilots included (few devices, where chance failures happen).

Truth: :attr:`Generated.releases` (manufacturer, model, version, mechanism, factor,
is_pilot, is_seasonal, n_succeeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-01-12")
HISTORY_DAYS = 122
STEP_H = 0.25                          # physics step: 15 minutes
MIN_GAP_DAYS = 14                      # a device is updated at most once in this many days

#: model: (manufacturer, device_type, zone kind, share of the fleet, main versions, pilot,
#:         Weibull shape, Weibull scale (days), age at start (days, range))
MODELS = {
    "VA-310": ("Halvorsen Controls", "valve_actuator", "indoor", 0.40,
               ["4.2.0", "4.3.0", "4.4.0", "4.5.0"], "4.3.1",
               0.7, 420.0, (20, 250)),
    "FM-Aqua 2": ("Brightwater Metering", "flow_meter", "outdoor", 0.35,
                  ["24.11", "25.01", "25.02.1", "25.03"], "25.01.7",
                  1.0, 230.0, (60, 900)),
    "GS-R4": ("Pemberton Gasworks", "gas_sensor", "roof", 0.25,
              ["B1207", "B1214", "B1301", "B1322"], "B1299",
              2.3, 650.0, (200, 1100)),
}
INTERVALS_H = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 6.0])
INTERVAL_P = np.array([0.12, 0.18, 0.25, 0.2, 0.15, 0.1])
WAVES = [(0, 0.05), (7, 0.15), (14, 0.30), (21, 1.0)]   # day offset, share of the coverage


@dataclass
class Generated:
    devices: pd.DataFrame         # the devices ingest kind
    readings: pd.DataFrame        # readings (battery_pct and a primary metric)
    device_events: pd.DataFrame   # failure, battery_replaced, reboot
    update_events: pd.DataFrame   # the update_events ingest kind
    firmware_reports: pd.DataFrame
    firmware_releases: pd.DataFrame
    releases: pd.DataFrame        # truth per release
    end: pd.Timestamp


def _season(rng, n_days: int) -> dict[str, np.ndarray]:
    """Daily drain multiplier per zone kind (outdoor: cold; roof: heat; indoor: none)."""
    doy = START.day_of_year + np.arange(n_days)
    temp = 9.0 - 11.0 * np.cos(2 * np.pi * (doy - 15) / 365.0)
    w = np.zeros(n_days)
    for i in range(1, n_days):                      # AR(1) weather
        w[i] = 0.8 * w[i - 1] + rng.normal(0, 2.0)
    temp = temp + w
    return {"indoor": np.ones(n_days),
            "outdoor": 1.0 + 0.05 * np.clip(15.0 - temp, 0, None),
            "roof": 1.0 + 0.06 * np.clip(temp + 10.0 - 18.0, 0, None)}


def _rollouts(rng, models: dict, n_days: int):
    """Release schedule and update campaigns. Returns (release truth rows, per-device
    list of (succeeded_day, release_key), update event rows)."""
    rel_rows, events = [], []
    timeline: dict[str, list] = {}
    for model, devs in models.items():
        vendor, _, zone_kind, _, mains, pilot, *_ = MODELS[model]
        starts = [10 + 24 * k + rng.uniform(0, 6) for k in range(len(mains))]
        rels = [(v, s, False, rng.uniform(0.45, 0.9)) for v, s in zip(mains, starts, strict=True)]
        rels.append((pilot, rng.uniform(20, n_days - 30), True, 0.0))
        rels.sort(key=lambda r: r[1])
        current = {d: -1.0 for d in devs}           # start day of the running release
        last_up = {d: -1e9 for d in devs}
        for version, start, is_pilot, cover in rels:
            key = (vendor, model, version)
            camp = f"{model.split()[0].lower()}-{version}-rollout"
            rel_rows.append(dict(manufacturer=vendor, model=model, version=version,
                                 start_day=start, is_pilot=is_pilot,
                                 is_seasonal=zone_kind != "indoor"))
            if is_pilot:
                waves = [(0, int(rng.integers(5, 21)))]
            else:
                target = int(round(cover * len(devs)))
                waves, done = [], 0
                for off, share in WAVES:
                    n = max(5, int(round(share * target)) - done) if off == 0 else \
                        int(round(share * target)) - done
                    waves.append((off, max(n, 0)))
                    done += max(n, 0)
            targeted = set()
            for off, n in waves:
                day = start + off
                if day > n_days - 1:
                    continue
                ok = [d for d in devs if d not in targeted and current[d] < start
                      and day - last_up[d] >= MIN_GAP_DAYS]
                if not ok or n <= 0:
                    continue
                pick = rng.choice(ok, size=min(n, len(ok)), replace=False)
                for d in pick:
                    targeted.add(d)
                    t = day + rng.uniform(0, 1.0)
                    ev = [(t, "scheduled", None)]
                    t += rng.exponential(0.3) if rng.random() < 0.85 else rng.uniform(1, 4)
                    ev.append((t, "downloading", None))
                    t += rng.uniform(0.5, 6) / 24
                    u = rng.random()
                    if u < 0.025:
                        ev.append((t, "failed", "integrity check failure"))
                    else:
                        ev.append((t, "downloaded", None))
                        t += rng.uniform(0.05, 2) / 24
                        ev.append((t, "updating", None))
                        t += rng.uniform(2, 15) / 1440
                        if u < 0.05:
                            ev.append((t, "failed", "update failed"))
                            t += rng.uniform(5, 60) / 1440
                            ev.append((t, "rolled_back", "boot check failed"))
                        else:
                            ev.append((t, "succeeded", None))
                            if t <= n_days - 0.01:
                                timeline.setdefault(d, []).append((t, key))
                                current[d] = start
                                last_up[d] = t
                    for at, state, reason in ev:
                        if at < n_days:
                            events.append(dict(campaign_id=camp, device_id=d,
                                               event_at=START + pd.to_timedelta(at, "D"),
                                               state=state, target_version=version,
                                               reason=reason))
    return rel_rows, timeline, events


def _outage(off: np.ndarray, t_day: float, hours: float) -> None:
    """Take a device off the air from day t_day for hours."""
    a = int(t_day * 24 / STEP_H)
    off[a:a + int(hours / STEP_H)] = True


def generate(n_devices: int = 600, seed: int = 1, days: int = HISTORY_DAYS) -> Generated:
    rng = np.random.default_rng(seed * 104_729 + 17)
    n_steps = int(days * 24 / STEP_H)
    t_h = np.arange(n_steps) * STEP_H
    day_of = (t_h // 24).astype(int)
    season = _season(rng, days)
    names = list(MODELS)
    shares = np.array([MODELS[m][3] for m in names])
    model_of = rng.choice(len(names), size=n_devices, p=shares / shares.sum())
    prefix = {"VA-310": "hv", "FM-Aqua 2": "bw", "GS-R4": "pg"}
    dev_ids = [f"{prefix[names[m]]}-{i:05d}" for i, m in enumerate(model_of)]
    by_model = {m: [d for d, k in zip(dev_ids, model_of, strict=True) if names[k] == m]
                for m in names}
    rel_rows, timeline, upd = _rollouts(rng, by_model, days)
    rel = pd.DataFrame(rel_rows)
    # three bad main releases, one per mechanism, anywhere in the fleet
    mains = rel.index[~rel.is_pilot].to_numpy()
    bad = rng.choice(mains, size=3, replace=False)
    rel["mechanism"] = "none"
    rel["factor"] = np.nan
    rel.loc[bad[0], ["mechanism", "factor"]] = ["drain", rng.uniform(1.3, 2.5)]
    rel.loc[bad[1], ["mechanism", "factor"]] = ["failure", rng.uniform(3.0, 6.0)]
    rel.loc[bad[2], ["mechanism", "factor"]] = ["silence", rng.uniform(0.2, 0.5)]
    effect = {(r.manufacturer, r.model, r.version): (r.mechanism, r.factor)
              for r in rel.itertuples()}

    dev_rows, reads, dev_ev, fw_rep = [], [], [], []
    for d, mi in zip(dev_ids, model_of, strict=True):
        model = names[mi]
        vendor, dtype, zone_kind, _, mains_v, _, k_shape, lam, age_rng = MODELS[model]
        # the release running at each step and each day
        tl = timeline.get(d, [])
        drain_mult = np.ones(n_steps)
        hazard_mult = np.ones(days)
        drop_rate = np.zeros(days)
        for j, (t_s, key) in enumerate(tl):
            t_e = tl[j + 1][0] if j + 1 < len(tl) else days
            mech, fac = effect[key]
            s0, s1 = int(t_s * 24 / STEP_H), int(t_e * 24 / STEP_H)
            d0, d1 = int(np.ceil(t_s)), int(np.ceil(t_e))
            if mech == "drain":
                drain_mult[s0:s1] = fac
            elif mech == "failure":
                hazard_mult[d0:d1] = fac
                if d0 > 0:                          # the part of the update day
                    hazard_mult[d0 - 1] = 1 + (fac - 1) * (d0 - t_s)
            elif mech == "silence":
                drop_rate[int(np.floor(t_s)):d1] = -np.log(1 - fac) / 7.0
        # consumption, %/day
        base = float(np.exp(rng.normal(np.log(0.55), 0.55)))
        duty = np.ones(n_steps)
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            duty[int(rng.uniform(0.05, 0.95) * n_steps):] *= float(np.exp(rng.normal(0, 0.25)))
        seas = season[zone_kind][day_of] * float(rng.uniform(0.8, 1.2))
        rate = base * duty * seas * drain_mult * STEP_H / 24
        used = np.cumsum(rate)
        level = rng.uniform(30, 100) - used
        logged = rng.random() < 0.8
        while True:
            below = np.flatnonzero(level < 4.0)
            if not len(below):
                break
            i = below[0]
            level[i:] = rng.uniform(96, 100) - (used[i:] - used[i])
            if logged:
                dev_ev.append(dict(device_id=d, event_at=START + pd.to_timedelta(t_h[i], "h"),
                                   event="battery_replaced", detail=None))
        # outages (steps off the air): background, after failures, and from a bad release
        off = np.zeros(n_steps, bool)

        for _ in range(rng.poisson(days / 45.0)):
            _outage(off, rng.uniform(0, days), float(np.exp(rng.normal(np.log(8), 1.0))))
        # failures: Weibull hazard in age, a frailty per device, the release's multiplier
        age0 = rng.uniform(*age_rng)
        frail = rng.gamma(2.0, 0.5)
        age = age0 + np.arange(days) + 0.5
        h = frail * (k_shape / lam) * (age / lam) ** (k_shape - 1) * hazard_mult
        fails = np.flatnonzero(rng.random(days) < 1 - np.exp(-h))
        for fd in fails:
            t_f = fd + rng.uniform(0, 1)
            dev_ev.append(dict(device_id=d, event_at=START + pd.to_timedelta(t_f, "D"),
                               event="failure", detail=str(rng.choice(
                                   ["watchdog reset", "sensor fault", "flash write error",
                                    "actuator stall", "modem hang"]))))
            if rng.random() < 1 / 3:
                _outage(off, t_f, rng.uniform(12, 72))
        for dd in np.flatnonzero(drop_rate > 0):
            if rng.random() < 1 - np.exp(-drop_rate[dd]):
                _outage(off, dd + rng.uniform(0, 1), rng.uniform(26, 72))
        for _ in range(rng.poisson(days / 60.0)):   # reboots: not failures
            dev_ev.append(dict(device_id=d, event_at=START + pd.to_timedelta(
                rng.uniform(0, days), "D"), event="reboot", detail="scheduled"))
        # reports
        interval = float(rng.choice(INTERVALS_H, p=INTERVAL_P))
        every = max(int(round(interval / STEP_H)), 1)
        idx = np.arange(int(rng.integers(0, every)), n_steps, every)
        idx = idx[~off[idx] & (rng.random(len(idx)) >= rng.uniform(0.01, 0.15))]
        at = START + pd.to_timedelta(t_h[idx], "h") + pd.to_timedelta(
            rng.uniform(0, 90, len(idx)), "s")
        cap_err = rng.normal(0, 0.05)
        gauge = 100.0 - (100.0 - level[idx]) * (1 + cap_err)
        gauge = np.clip(np.round(gauge) if rng.random() < 0.6 else np.floor(gauge), 0, 100)
        bat = np.arange(len(idx)) % (4 if interval < 1 else 1) == 0
        reads.append(pd.DataFrame({"device_id": d, "observed_at": at[bat],
                                   "metric": "battery_pct", "value": gauge[bat]}))
        metric = {"valve_actuator": "temperature_c", "flow_meter": "pressure_kpa",
                  "gas_sensor": "humidity_pct"}[dtype]
        base_v = {"temperature_c": 21.0, "pressure_kpa": 250.0, "humidity_pct": 45.0}[metric]
        reads.append(pd.DataFrame({"device_id": d, "observed_at": at, "metric": metric,
                                   "value": np.round(base_v * (1 + rng.normal(0, 0.03, len(idx))),
                                                     2)}))
        first = rng.choice(mains_v[:1])
        fw_rep.append(dict(device_id=d, reported_at=START + pd.Timedelta(hours=1), version=first))
        for t_s, key in tl:
            fw_rep.append(dict(device_id=d, reported_at=START + pd.to_timedelta(
                t_s + 0.02, "D"), version=key[2]))
        dev_rows.append(dict(device_id=d, device_type=dtype, manufacturer=vendor, model=model,
                             site="harbour-works", zone=f"{zone_kind}-{int(rng.integers(1, 5))}",
                             battery_chemistry="li_mno2", battery_cells=1,
                             reporting_interval_s=interval * 3600))
    upd_df = pd.DataFrame(upd)
    succ = upd_df[upd_df.state == "succeeded"].groupby("target_version").size()
    rel["n_succeeded"] = rel.version.map(succ).fillna(0).astype(int)
    releases = pd.DataFrame([
        dict(manufacturer=v, model=m, version=ver, released_at=START + pd.to_timedelta(
            r.start_day - 2, "D"), status="approved")
        for r, (v, m, ver) in zip(rel.itertuples(), zip(rel.manufacturer, rel.model,
                                                         rel.version, strict=True),
                                  strict=True)])
    return Generated(pd.DataFrame(dev_rows), pd.concat(reads, ignore_index=True),
                     pd.DataFrame(dev_ev, columns=["device_id", "event_at", "event", "detail"]),
                     upd_df, pd.DataFrame(fw_rep), releases,
                     rel.drop(columns=["start_day"]), START + pd.Timedelta(days=days))


def load_into(fleet, gen: Generated) -> None:
    """Ingest the generated fleet through tsfleet's public API."""
    fleet.ingest("devices", gen.devices)
    fleet.ingest("firmware_releases", gen.firmware_releases)
    fleet.ingest("readings", gen.readings)
    fleet.ingest("device_events", gen.device_events)
    fleet.ingest("firmware_reports", gen.firmware_reports)
    fleet.ingest("update_events", gen.update_events)
