"""The radio network: gateways, reach sets, attachment over time and gateway load.

Geometry per site: gateways and devices on a 250 m square; the mean RSSI of a
link is a log-distance path loss with per-device obstruction and per-link
shadowing. A link is *usable* when its mean RSSI is at or above
``RSSI_FLOOR_DBM``; gateways hear weaker links now and then, down to the
receiver sensitivity. Devices attach to their strongest usable gateway and
stay there (sticky), except where a phenomenon is injected:

- site 0: a small ``hub`` gateway (strongest for most devices) carries 130 %
  of its capacity, while a large ``idle`` gateway at the same site, reachable
  by many of the hub's devices, carries almost nothing;
- site 0: an ``added`` gateway commissioned mid-history (``installed_at``)
  attracts devices, and a ``removed`` gateway is decommissioned at 30 % of
  the history after its devices moved away;
- site 1: a ``growing`` gateway gains devices steadily over the last 40 days
  and will pass its capacity about 15 days after the end of the history;
- site 2: a gateway ``failed`` at 85 % of the history: it reports down twice,
  then its statistics stop; its devices are disconnected and stay so;
- about 2 % of devices flap (4-12 reconnects a day); all others reconnect
  about once in 20 days.

Gateway statistics are hourly: the message rate follows the attached devices'
rates and a time-of-day profile peaking at 15:00; latency and loss grow slowly with
load up to a knee (``knee_msgs_per_s``) and steeply beyond it.

Truth: ``sim.network_gateways``, ``sim.network_devices``, ``sim.network_links``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton

RSSI_FLOOR_DBM = -115.0         # the analysis default: a usable link is at or above this
SENSITIVITY_DBM = -125.0        # never heard below this
SITE_SIZE_M = 250.0
MSG_RATE_PER_DEVICE = 0.02      # messages/s of an average device (uplinks, acks, retries)
PEAK_FACTOR = 1.45              # traffic at the 15:00 peak relative to the daily mean of 1
HEARD_DAYS = 28                 # gateways keep 'heard' reports for this many days
FLAP_SHARE = 0.02
RSSI_EVERY_H = 6                # devices report link RSSI as a diagnostic every 6 hours


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("network")
    net = _build(sk, rng)
    _write(sk, out, rng, net)


# -- topology and timeline ------------------------------------------------------------------

def _add_gateways(sk: Skeleton, rng: np.random.Generator) -> dict:
    """Append the special gateways to ``sk.gateways``; returns roles and positions."""
    g = sk.gateways
    sites = list(sk.sites)
    s0, s1 = sites[0], sites[1 % len(sites)]
    n_site = {s: int((sk.devices["site"] == s).sum()) for s in sites}
    H = sk.n_hours

    def cap(frac: float, site: str) -> int:
        return int(max(10, round(frac * n_site[site] / 10) * 10))

    zone0 = sk.zones["zone"][sk.zones["site"] == s0]
    zone1 = sk.zones["zone"][sk.zones["site"] == s1]
    new = [  # id, site, zone, capacity, role, installed hour, removed hour
        (f"gw-{s0}-hub", s0, zone0[0], cap(0.3, s0), "overloaded", None, None),
        (f"gw-{s0}-idle", s0, zone0[-1], cap(1.0, s0), "idle", None, None),
        (f"gw-{s0}-added", s0, zone0[1 % len(zone0)], cap(0.6, s0), "added", H // 2, None),
        (f"gw-{s0}-old", s0, zone0[2 % len(zone0)], cap(0.6, s0), "removed", None, int(H * 0.3)),
        (f"gw-{s1}-grow", s1, zone1[0], cap(0.2, s1), "growing", None, None),
    ]
    n_old = len(g["gateway_id"])
    for key, idx in (("gateway_id", 0), ("site", 1), ("zone", 2)):
        g[key] = np.concatenate([g[key], np.array([r[idx] for r in new], dtype=object)])
    g["capacity_devices"] = np.concatenate([g["capacity_devices"], [r[3] for r in new]])
    g["kind"] = np.concatenate([g["kind"], np.array(["gateway"] * len(new), dtype=object)])
    G = len(g["gateway_id"])
    role = np.array(["normal"] * n_old + [r[4] for r in new], dtype=object)
    inst_h = np.full(G, -1)
    rem_h = np.full(G, H + 1)
    for i, r in enumerate(new):
        if r[5] is not None:
            inst_h[n_old + i] = r[5]
        if r[6] is not None:
            rem_h[n_old + i] = r[6]
    # The failed gateway: the first ordinary gateway of site 2.
    s2 = sites[2 % len(sites)]
    fail_idx = int(np.flatnonzero((g["site"] == s2) & (role == "normal"))[0])
    role[fail_idx] = "failed"
    fail_h = np.full(G, H + 1)
    fail_h[fail_idx] = int(H * 0.85)
    pos = rng.uniform(0, SITE_SIZE_M, size=(G, 2))
    gain = rng.uniform(0, 3, size=G)
    pos[role == "overloaded"] = SITE_SIZE_M / 2
    gain[role == "overloaded"] = 8.0
    pos[role == "idle"] = SITE_SIZE_M * np.array([0.75, 0.7])
    gain[role == "idle"] = 4.0
    nan_t = np.datetime64("NaT")
    g["installed_at"] = np.where(inst_h >= 0, sk.hours[np.clip(inst_h, 0, H - 1)], nan_t)
    g["removed_at"] = np.where(rem_h <= H, sk.hours[np.clip(rem_h, 0, H - 1)], nan_t)
    return dict(role=role, inst_h=inst_h, rem_h=rem_h, fail_h=fail_h, pos=pos, gain=gain)


def _build(sk: Skeleton, rng: np.random.Generator) -> dict:
    topo = _add_gateways(sk, rng)
    g, d = sk.gateways, sk.devices
    n, H, G = sk.n_devices, sk.n_hours, len(g["gateway_id"])
    role = topo["role"]
    dpos = rng.uniform(0, SITE_SIZE_M, size=(n, 2))
    obstruction = rng.uniform(0, 18, size=n) + np.where(rng.random(n) < 0.06, 22.0, 0.0)
    # Links: every device against every gateway of its site.
    site_gws = {s: np.flatnonzero(g["site"] == s) for s in sk.sites}
    li_d, li_g = [], []
    for s, gws in site_gws.items():
        devs = np.flatnonzero(d["site"] == s)
        li_d.append(np.repeat(devs, len(gws)))
        li_g.append(np.tile(gws, len(devs)))
    li_d, li_g = np.concatenate(li_d), np.concatenate(li_g)
    dist = np.maximum(np.hypot(*(dpos[li_d] - topo["pos"][li_g]).T), 3.0)
    mean = (14 + topo["gain"][li_g] - 40 - 33 * np.log10(dist) - obstruction[li_d]
            + rng.normal(0, 6, size=len(li_d)))
    always = (role[li_g] != "added") & (role[li_g] != "removed")
    # Every device has at least one usable link on a gateway present all along.
    best = np.full(n, -np.inf)
    np.maximum.at(best, li_d[always], mean[always])
    weak = np.flatnonzero(best < RSSI_FLOOR_DBM + 2)
    if len(weak):
        cand = np.flatnonzero(always & np.isin(li_d, weak))
        order = cand[np.lexsort((-mean[cand], li_d[cand]))]
        first = order[np.r_[True, li_d[order][1:] != li_d[order][:-1]]]
        mean[first] = RSSI_FLOOR_DBM + rng.uniform(2, 8, size=len(first))
    # Keep link means clear of the floor so that 'usable' is well defined.
    near = np.abs(mean - RSSI_FLOOR_DBM) < 2.5
    side = np.where(mean[near] >= RSSI_FLOOR_DBM, 1.0, -1.0)
    mean[near] = RSSI_FLOOR_DBM + side * (2.5 + rng.uniform(0, 1, near.sum()))
    usable = mean >= RSSI_FLOOR_DBM
    R = np.full((n, G), -np.inf)
    R[li_d, li_g] = mean
    U = np.zeros((n, G), dtype=bool)
    U[li_d, li_g] = usable

    gw0 = np.full(n, -1)
    move_h = np.full(n, H + 1)
    gw1 = np.full(n, -1)
    sites = list(sk.sites)
    s0, s1 = sites[0], sites[1 % len(sites)]
    hub = int(np.flatnonzero(role == "overloaded")[0])
    idle = int(np.flatnonzero(role == "idle")[0])
    added = int(np.flatnonzero(role == "added")[0])
    old = int(np.flatnonzero(role == "removed")[0])
    grow = int(np.flatnonzero(role == "growing")[0])
    cap = g["capacity_devices"]

    # Hub: the devices that hear it best, 130 % of its capacity.
    cand = np.flatnonzero((d["site"] == s0) & U[:, hub])
    cand = cand[np.argsort(-R[cand, hub])][: int(round(1.3 * cap[hub]))]
    gw0[cand] = hub
    # Everyone else: strongest usable gateway present from the start (the special ones only
    # as a last resort).
    rest = np.flatnonzero(gw0 < 0)
    pref = np.where(U[rest], R[rest], -np.inf)
    pref[:, [hub, idle, added, old, grow]] -= 200.0
    pref[:, old] += 197.0        # the old gateway still draws its share until removed
    gw0[rest] = np.argmax(pref, axis=1)
    # Growing gateway: 45 % of capacity at start, 85 % at the end, joining over 40 days.
    n_start = int(np.sum(gw0 == grow))
    cand = np.flatnonzero((d["site"] == s1) & U[:, grow] & ~np.isin(gw0, [hub, grow, old]))
    cand = cand[np.argsort(-R[cand, grow])]
    k0 = max(0, int(round(0.45 * cap[grow])) - n_start)
    k1 = max(0, int(round(0.85 * cap[grow])) - n_start - k0)
    gw0[cand[:k0]] = grow
    joiners = cand[k0:k0 + k1]
    # The joiners move to the growing gateway at spread times.
    span = min(H - 1, 40 * 24)
    move_h[joiners] = H - span + rng.integers(0, span, size=len(joiners))
    gw1[joiners] = grow
    # The removed gateway's devices leave during the two days before removal.
    leavers = np.flatnonzero(gw0 == old)
    alt = np.where(U[leavers], R[leavers], -np.inf)
    alt[:, [old, added, hub, grow]] = -np.inf
    gw1[leavers] = np.argmax(alt, axis=1)
    move_h[leavers] = topo["rem_h"][old] - 1 - rng.integers(0, 48, size=len(leavers))
    # The added gateway attracts devices that hear it 6 dB better, within three days.
    movers = np.flatnonzero((gw1 < 0) & ~np.isin(gw0, [hub, grow, idle]) & U[:, added]
                            & (R[:, added] > R[np.arange(n), gw0] + 6))
    movers = movers[: int(0.6 * cap[added])]
    gw1[movers] = added
    move_h[movers] = topo["inst_h"][added] + 1 + rng.integers(0, 72, size=len(movers))
    end_gw = np.where(gw1 >= 0, gw1, gw0)
    fail_h = topo["fail_h"][end_gw]
    stranded = fail_h <= H
    return dict(topo=topo, li_d=li_d, li_g=li_g, mean=mean, usable=usable, gw0=gw0, gw1=gw1,
                move_h=move_h, end_gw=end_gw, stranded=stranded, fail_h=fail_h, R=R)


# -- output -------------------------------------------------------------------------------

def _write(sk: Skeleton, out: SimOutput, rng: np.random.Generator, net: dict) -> None:
    g, d = sk.gateways, sk.devices
    n, H, G = sk.n_devices, sk.n_hours, len(g["gateway_id"])
    topo = net["topo"]
    t0 = sk.hours[0]
    sec = np.timedelta64(1, "s")
    out.add_rows("gateways", dict(
        gateway_id=g["gateway_id"], kind=g["kind"], site=g["site"], zone=g["zone"],
        capacity_devices=g["capacity_devices"], installed_at=g["installed_at"],
        removed_at=g["removed_at"]))

    # Connection events --------------------------------------------------------------
    ev_dev, ev_gw, ev_t, ev_kind = [], [], [], []

    def emit(dev, gw, t, kind):
        ev_dev.append(dev)
        ev_gw.append(gw)
        ev_t.append(t)
        ev_kind.append((kind,))

    all_d = np.arange(n)
    emit(all_d, net["gw0"], t0 - rng.integers(60, 20 * 86400, size=n) * sec, "connect")
    moved = np.flatnonzero(net["gw1"] >= 0)
    t_move = t0 + (net["move_h"][moved] * 3600 + rng.integers(0, 3600, len(moved))) * sec
    emit(moved, net["gw0"][moved], t_move, "disconnect")
    emit(moved, net["gw1"][moved], t_move + rng.integers(5, 120, len(moved)) * sec, "connect")
    down = np.flatnonzero(net["stranded"])
    t_down = t0 + (net["fail_h"][down] * 3600 + rng.integers(0, 600, len(down))) * sec
    emit(down, net["end_gw"][down], t_down, "disconnect")
    # Reconnects: rare for all, frequent for flappers.
    flap = rng.random(n) < FLAP_SHARE
    flap[rng.choice(n, size=min(n, 3), replace=False)] = True
    flap &= ~net["stranded"]          # a stranded device has nothing to flap with
    flap_rate = np.where(flap, rng.uniform(4, 12, size=n), 1 / 20)        # per day
    flap_from = np.where(flap, rng.integers(0, max(1, H // 2), size=n), 0)   # hour it starts
    n_ev = rng.poisson(flap_rate * (H - flap_from) / 24)
    rd = np.repeat(all_d, n_ev)
    rh = flap_from[rd] + rng.random(len(rd)) * (H - flap_from[rd])
    # Keep reconnects clear of moves and failures (no interleaving of sessions).
    ok = (np.abs(rh - net["move_h"][rd]) > 2) & (rh < net["fail_h"][rd] - 2) & (rh < H - 0.05)
    rd, rh = rd[ok], rh[ok]
    rgw = np.where(rh < net["move_h"][rd], net["gw0"][rd], net["gw1"][rd])
    rt = t0 + (rh * 3600).astype(np.int64) * sec
    emit(rd, rgw, rt, "disconnect")
    emit(rd, rgw, rt + rng.integers(20, 180, len(rd)) * sec, "connect")

    # 'Heard' reports: one per day per link the gateway hears, for the last HEARD_DAYS.
    days = min(HEARD_DAYS, H // 24)
    li_d, li_g, mean = net["li_d"], net["li_g"], net["mean"]
    audible = np.flatnonzero(mean >= SENSITIVITY_DBM)
    p = np.clip((mean[audible] - SENSITIVITY_DBM) / 10, 0.1, 0.95)
    hd = np.repeat(audible, days)
    day = np.tile(np.arange(H // 24 - days, H // 24), len(audible))
    keep = rng.random(len(hd)) < np.repeat(p, days)
    hd, day = hd[keep], day[keep]
    hh = day * 24 + rng.integers(0, 24, size=len(hd))
    gidx = li_g[hd]
    active = (hh >= topo["inst_h"][gidx]) & (hh < topo["rem_h"][gidx]) & (hh < topo["fail_h"][gidx])
    hd, hh, gidx = hd[active], hh[active], gidx[active]
    rssi = np.round(mean[hd] + rng.normal(0, 3, len(hd)))
    snr = np.round(np.clip((rssi + 118) / 2 + rng.normal(0, 1.5, len(hd)), -20, 15), 1)
    heard_t = t0 + (hh * 3600 + rng.integers(0, 3600, len(hd))) * sec

    dev_ids, gw_ids = d["device_id"], g["gateway_id"]
    dev_names, gw_names = pa.array(dev_ids.tolist()), pa.array(gw_ids.tolist())
    kinds = pa.array(["connect", "disconnect", "heard"])
    code = {"connect": 0, "disconnect": 1}
    n_ev = sum(len(x) for x in ev_dev)
    out.add_rows("connections", pa.table(dict(
        device_id=dev_names.take(np.concatenate(ev_dev + [li_d[hd]])),
        gateway_id=gw_names.take(np.concatenate(ev_gw + [gidx])),
        event_at=pa.array(np.concatenate(ev_t + [heard_t]).astype("datetime64[us]")),
        event=kinds.take(np.concatenate([np.full(len(x), code[k[0]]) for x, k in
                                         zip(ev_dev, ev_kind, strict=True)]
                                        + [np.full(len(hd), 2)])),
        rssi_dbm=pa.array(np.concatenate([np.full(n_ev, np.nan), rssi]), from_pandas=True),
        snr_db=pa.array(np.concatenate([np.full(n_ev, np.nan), snr]), from_pandas=True))))

    # RSSI diagnostics of the attached link every RSSI_EVERY_H hours while connected ----------
    hs = np.arange(0, H, RSSI_EVERY_H)
    slot = (hs[None, :] + rng.integers(0, RSSI_EVERY_H, size=n)[:, None]).clip(0, H - 1)
    level = np.where(slot < net["move_h"][:, None], net["R"][all_d, net["gw0"]][:, None],
                     net["R"][all_d, net["gw1"]][:, None])
    pool = rng.normal(0, 2.5, size=len(hs) + 4096)
    noise = np.lib.stride_tricks.sliding_window_view(pool, len(hs))[rng.integers(0, 4096, n)]
    ok = slot < net["fail_h"][:, None]
    out.add_readings("rssi_dbm", np.broadcast_to(all_d[:, None], slot.shape)[ok], slot[ok],
                     np.round(level + noise)[ok])

    # Gateway statistics ---------------------------------------------------------------
    rate = MSG_RATE_PER_DEVICE * rng.uniform(0.6, 1.4, size=n)
    load = np.zeros((G, H + 2))
    count = np.zeros((G, H + 2))
    np.add.at(load, (net["gw0"], 0), rate)
    np.add.at(count, (net["gw0"], 0), 1)
    mh = np.minimum(net["move_h"][moved], H + 1)
    for arr, w in ((load, rate[moved]), (count, 1.0)):
        np.add.at(arr, (net["gw0"][moved], mh), -w)
        np.add.at(arr, (net["gw1"][moved], mh), w)
    fh = net["fail_h"][down]
    np.add.at(load, (net["end_gw"][down], fh), -rate[down])
    np.add.at(count, (net["end_gw"][down], fh), -1)
    load, count = np.cumsum(load, axis=1)[:, :H], np.cumsum(count, axis=1)[:, :H]
    hod = (sk.hours.astype("datetime64[h]").astype(np.int64) % 24)
    profile = 1 + (PEAK_FACTOR - 1) * np.sin(2 * np.pi * (hod - 9) / 24)     # peak at 15:00
    daily = np.repeat(rng.lognormal(0, 0.08, size=(G, H // 24 + 1)), 24, axis=1)[:, :H]
    msgs = load * profile[None, :] * daily * rng.lognormal(0, 0.04, size=(G, H))
    cap = g["capacity_devices"].astype(float)
    knee_frac = rng.uniform(0.95, 1.15, size=G)
    knee_frac[topo["role"] == "overloaded"] = 0.95
    knee = knee_frac * cap * MSG_RATE_PER_DEVICE * PEAK_FACTOR
    x = msgs / knee[:, None]
    base = rng.uniform(15, 35, size=G)[:, None]
    over = np.maximum(0, x - 1)
    latency = base * (1 + 0.2 * x + 4.0 * over) * rng.lognormal(0, 0.08, size=(G, H))
    loss = np.clip(0.2 + 0.3 * x + 15 * over + rng.normal(0, 0.15, (G, H)), 0, 100)
    cpu = np.clip(12 + 55 * x + rng.normal(0, 3, (G, H)), 0, 100)
    mem = np.clip(30 + 30 * count / cap[:, None] + rng.normal(0, 2, (G, H)), 0, 100)
    hh = np.arange(H)[None, :]
    present = (hh >= topo["inst_h"][:, None]) & (hh < topo["rem_h"][:, None])
    present &= hh < topo["fail_h"][:, None] + 2
    present &= rng.random((G, H)) > 0.01
    is_down = hh >= topo["fail_h"][:, None]
    present |= (hh >= topo["fail_h"][:, None]) & (hh < topo["fail_h"][:, None] + 2)
    gi, hi = np.nonzero(present)
    offset = rng.integers(0, 3600, size=G)
    up = ~is_down[gi, hi]
    out.add_rows("gateway_stats", dict(
        gateway_id=gw_ids[gi], observed_at=t0 + (hi * 3600 + offset[gi]) * sec, is_up=up,
        cpu_pct=np.where(up, np.round(cpu[gi, hi], 1), np.nan),
        memory_pct=np.where(up, np.round(mem[gi, hi], 1), np.nan),
        latency_ms=np.where(up, np.round(latency[gi, hi], 1), np.nan),
        packet_loss_pct=np.where(up, np.round(loss[gi, hi], 2), np.nan),
        messages_per_s=np.where(up, np.round(msgs[gi, hi], 3), np.nan),
        n_connected=np.where(up, count[gi, hi], 0).astype(np.int64)))

    # Truth ------------------------------------------------------------------------------
    end_usable = net["usable"] & np.isin(topo["role"][li_g], ["failed", "removed"], invert=True)
    n_usable = np.bincount(li_d[end_usable], minlength=n)
    end_count = np.bincount(net["end_gw"][~net["stranded"]], minlength=G)
    out.add_truth("network_gateways", dict(
        gateway_id=gw_ids, site=g["site"], role=topo["role"],
        capacity_devices=g["capacity_devices"],
        knee_msgs_per_s=knee, knee_devices=knee_frac * cap,
        installed_at=g["installed_at"], removed_at=g["removed_at"],
        failed_at=np.where(topo["fail_h"] <= H, t0 + topo["fail_h"].clip(0, H) * 3600 * sec,
                           np.datetime64("NaT")),
        n_attached_end=end_count,
        is_beyond_knee_end=np.array([np.quantile(r[m], 0.95) > 1 if m.any() else False
                                     for r, m in zip(x[:, -7 * 24:], present[:, -7 * 24:],
                                                     strict=True)])))
    out.add_truth("network_devices", dict(
        device_id=dev_ids, site=d["site"], gateway_id_start=gw_ids[net["gw0"]],
        gateway_id_end=np.where(net["stranded"], None, gw_ids[net["end_gw"]]),
        last_gateway_id=gw_ids[net["end_gw"]], is_stranded=net["stranded"],
        n_usable_links_end=n_usable, is_spof=n_usable == 1, is_flapping=flap,
        flap_rate_per_day=np.where(flap, flap_rate, 0.0)))
    out.add_truth("network_links", dict(
        device_id=dev_ids[li_d], gateway_id=gw_ids[li_g], mean_rssi_dbm=mean,
        is_usable=net["usable"]))
