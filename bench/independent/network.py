"""A second network generator, independent of tsfleet/simulate, for the plan benchmark.

Written apart from ``tsfleet/simulate/network.py`` and sharing none of its
constants or its functional forms:

* **Layouts.** Three kinds of plant, mixed per seed: *clustered* (machine halls:
  devices and gateways in Gaussian clusters of very different sizes), *corridor*
  (a tunnel or pipeline 1.5-3 km long and 20-40 m wide, gateways strung along it,
  so reach is a long chain with no shortcut) and *hall* (an open floor with a
  jittered gateway grid and a few dense production cells).
* **Heterogeneous capacities** from a vendor mix (16, 32, 64, 128, 256 and 500
  devices), with the small ones over-represented in corridors; a site survey
  upgrades a gateway whose nearest devices outnumber its capacity, except where it
  was skipped (15 %), which leaves real hotspots.
* **Path loss**: a dual-slope model (exponent 2.0 to a per-plant breakpoint of
  15-60 m, then 3.2-4.2) plus a per-wall loss (walls every 12-30 m across the long
  axis, 3-9 dB each), per-gateway antenna gain (-2..+6 dBi), per-device transmit
  power by radio class (+8, +14 or +20 dBm) and correlated log-normal shadowing per
  link (4-9 dB by plant).
* **Heard reports**: every report carries Rayleigh fast fading (-10 log10 of an
  exponential draw, so reports skew low and their mean sits ~2.5 dB below the
  median) and is delivered only if it clears a gateway's sensitivity (-121..-126
  dBm): reach is what was *heard*, not what was computed. RSSI is reported as an
  integer clipped at -130 dBm.
* **Attachment**: commissioning, not signal. Installers walk in from the plant
  entrance and join each device to the first gateway (in walking order) whose
  beacon it hears at -108 dBm or better and within 6 dB of its strongest, else to
  its strongest; the gateways near the entrance overload. About 1 % of gateways
  are down at the end (they stop reporting ``gateway_stats``; their devices' last
  event stays a connect to them).

``generate(n_gateways, n_devices, seed)`` returns the foundation tables (Arrow) that
``bench/network.py`` loads straight into a store.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

CAPACITIES = np.array([16, 32, 64, 128, 256, 500])
CAP_P_OPEN = np.array([0.05, 0.15, 0.25, 0.3, 0.15, 0.1])
CAP_P_CORRIDOR = np.array([0.3, 0.35, 0.25, 0.1, 0.0, 0.0])
TX_DBM = np.array([8.0, 14.0, 20.0])
COMMISSION_DBM = -108.0
COMMISSION_MARGIN_DB = 6.0


def _plant_layout(rng, kind: str, n_gw: int, n_dev: int):
    """Gateway and device positions (m), the entrance, walls and radio constants."""
    if kind == "corridor":
        length, width = rng.uniform(1500, 3000), rng.uniform(20, 40)
        gx = np.sort(rng.uniform(0, length, n_gw))
        gpos = np.c_[gx, rng.uniform(0, width, n_gw)]
        dpos = np.c_[rng.uniform(0, length, n_dev), rng.uniform(0, width, n_dev)]
        entrance = np.array([0.0, width / 2])
    elif kind == "clustered":
        n_cl = max(1, n_gw // 4)
        centres = rng.uniform(0, 600, size=(n_cl, 2))
        weight = rng.pareto(1.2, n_cl) + 0.2
        dc = rng.choice(n_cl, size=n_dev, p=weight / weight.sum())
        dpos = centres[dc] + rng.normal(0, rng.uniform(8, 40, n_cl)[dc, None], (n_dev, 2))
        # Gateways follow the devices (one per cluster, the rest by cluster weight).
        gc = np.r_[np.arange(n_cl), rng.choice(n_cl, max(0, n_gw - n_cl),
                                               p=weight / weight.sum())][:n_gw]
        gpos = centres[gc] + rng.normal(0, 25, (n_gw, 2))
        entrance = centres[np.argmax(weight)] + rng.normal(0, 80, 2)
    else:  # hall
        side = int(np.ceil(np.sqrt(n_gw)))
        pitch = rng.uniform(40, 90)
        grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)
        gpos = (grid[rng.permutation(len(grid))[:n_gw]] + 0.5) * pitch
        gpos = gpos + rng.normal(0, pitch * 0.15, gpos.shape)
        span = side * pitch
        cells = rng.uniform(0, span, size=(3, 2))
        in_cell = rng.random(n_dev) < 0.35
        dpos = np.where(in_cell[:, None],
                        cells[rng.integers(0, 3, n_dev)] + rng.normal(0, 10, (n_dev, 2)),
                        rng.uniform(0, span, (n_dev, 2)))
        entrance = np.array([0.0, 0.0])
    radio = dict(breakpoint_m=rng.uniform(15, 60), far_exp=rng.uniform(3.2, 4.2),
                 wall_every_m=rng.uniform(12, 30), wall_db=rng.uniform(3, 9),
                 shadow_db=rng.uniform(4, 9))
    return gpos, dpos, entrance, radio


def _mean_rssi(rng, gpos, dpos, gain, tx, radio, ld, lg):
    d = np.maximum(np.hypot(*(dpos[ld] - gpos[lg]).T), 1.0)
    bp = radio["breakpoint_m"]
    pl = 40.0 + 20.0 * np.log10(np.minimum(d, bp)) \
        + 10.0 * radio["far_exp"] * np.log10(np.maximum(d / bp, 1.0))
    walls = np.abs(np.floor(dpos[ld, 0] / radio["wall_every_m"])
                   - np.floor(gpos[lg, 0] / radio["wall_every_m"]))
    pl = pl + np.minimum(walls, 6) * radio["wall_db"]
    return tx[ld] + gain[lg] - pl + rng.normal(0, radio["shadow_db"], len(ld))


def generate(n_gateways: int = 300, n_devices: int = 12_000, seed: int = 11,
             days: int = 3, reports_per_day: int = 4) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    # Plants of 8-40 gateways, kinds mixed; devices shared out unevenly.
    sizes = []
    while sum(sizes) < n_gateways:
        sizes.append(int(rng.integers(8, 41)))
    sizes[-1] -= sum(sizes) - n_gateways
    if sizes[-1] < 2:
        sizes[-2] += sizes.pop()
    kinds = rng.choice(["clustered", "corridor", "hall"], size=len(sizes), p=[0.4, 0.25, 0.35])
    caps = [rng.choice(CAPACITIES, size=n_gw, p=CAP_P_CORRIDOR if kind == "corridor"
                       else CAP_P_OPEN) for n_gw, kind in zip(sizes, kinds, strict=True)]
    # Devices per plant: by its capacity, give or take (log-normal, sigma 0.35).
    share = np.array([c.sum() for c in caps], dtype=float) * rng.lognormal(0, 0.35, len(sizes))
    n_per = rng.multinomial(n_devices, share / share.sum())
    gw_site, cap, gain, sens = [], [], [], []
    d_site, cur, links_d, links_g, links_m, tx_all = [], [], [], [], [], []
    g0 = d0 = 0
    for p, (n_gw, n_dev, kind) in enumerate(zip(sizes, n_per, kinds, strict=True)):
        gpos, dpos, entrance, radio = _plant_layout(rng, kind, n_gw, n_dev)
        # Site survey: a gateway whose nearest devices outnumber its capacity is upgraded
        # to the smallest model with 10 % spare, except where the survey was skipped (15 %).
        near = np.bincount(np.argmin(np.linalg.norm(dpos[:, None, :] - gpos[None, :, :],
                                                    axis=2), axis=1), minlength=n_gw)
        need = np.ceil(near * 1.1)
        fit = CAPACITIES[np.minimum(np.searchsorted(CAPACITIES, need), len(CAPACITIES) - 1)]
        c = np.where((caps[p] < need) & (rng.random(n_gw) > 0.15), fit, caps[p])
        gn = rng.uniform(-2, 6, n_gw)
        sn = rng.uniform(-126, -121, n_gw)
        tx = rng.choice(TX_DBM, size=n_dev, p=[0.3, 0.5, 0.2])
        ld = np.repeat(np.arange(n_dev), n_gw)
        lg = np.tile(np.arange(n_gw), n_dev)
        m = _mean_rssi(rng, gpos, dpos, gn, tx, radio, ld, lg)
        keep = m >= sn[lg] - 8          # links that can deliver a faded report at all
        ld, lg, m = ld[keep], lg[keep], m[keep]
        # Commissioning: walking order from the entrance; first beacon heard well enough.
        walk = np.argsort(np.hypot(*(gpos - entrance).T))
        rank = np.empty(n_gw, dtype=np.int64)
        rank[walk] = np.arange(n_gw)
        att = np.full(n_dev, -1)
        best_m = np.full(n_dev, -np.inf)
        np.maximum.at(best_m, ld, m)
        good = (m >= COMMISSION_DBM) & (m >= best_m[ld] - COMMISSION_MARGIN_DB)
        order = np.lexsort((rank[lg[good]], ld[good]))
        first = np.r_[True, ld[good][order][1:] != ld[good][order][:-1]]
        att[ld[good][order][first]] = lg[good][order][first]
        strongest = np.lexsort((-m, ld))
        s_first = np.r_[True, ld[strongest][1:] != ld[strongest][:-1]]
        lonely = att < 0
        best_g = np.full(n_dev, -1)
        best_g[ld[strongest][s_first]] = lg[strongest][s_first]
        att[lonely] = best_g[lonely]
        nobody = att < 0                 # heard by no gateway: placed on the nearest
        att[nobody] = np.argmin(np.linalg.norm(dpos[nobody, None, :] - gpos[None, :, :],
                                               axis=2), axis=1)
        gw_site += [p] * n_gw
        cap.append(c)
        gain.append(gn)
        sens.append(sn)
        d_site += [p] * n_dev
        cur.append(att + g0)
        links_d.append(ld + d0)
        links_g.append(lg + g0)
        links_m.append(m)
        tx_all.append(tx)
        g0 += n_gw
        d0 += n_dev
    G, n = g0, d0
    cap = np.concatenate(cap)
    sens = np.concatenate(sens)
    cur = np.concatenate(cur)
    ld, lg, m = (np.concatenate(x) for x in (links_d, links_g, links_m))
    gw_site = np.array(gw_site)
    d_site = np.array(d_site)
    # Heard reports with Rayleigh fading, delivered above the gateway's sensitivity.
    k = days * reports_per_day
    rep = np.repeat(np.arange(len(ld)), k)
    fade = -10 * np.log10(rng.exponential(1.0, len(rep)))
    rssi = m[rep] - fade
    ok = rssi >= sens[lg[rep]]
    rep, rssi = rep[ok], np.clip(np.round(rssi[ok]), -130, None)
    t_end = np.datetime64(datetime(2026, 9, 1))
    span = np.int64(days * 86400)
    heard_at = t_end - rng.integers(1, span, len(rep)).astype("timedelta64[s]")
    conn_at = t_end - span.astype("timedelta64[s]") - rng.integers(
        3600, 86400 * 60, n).astype("timedelta64[s]")
    dev_ids = np.array([f"ix-{i:06d}" for i in range(n)], dtype=object)
    gw_ids = np.array([f"igw-{g:05d}" for g in range(G)], dtype=object)
    nh = len(rep)
    connections = pa.table({
        "device_id": pa.array(dev_ids.tolist()).take(np.r_[ld[rep], np.arange(n)]),
        "gateway_id": pa.array(gw_ids.tolist()).take(np.r_[lg[rep], cur]),
        "event_at": pa.array(np.r_[heard_at, conn_at].astype("datetime64[us]")),
        "event": pa.array(["heard"] * nh + ["connect"] * n),
        "rssi_dbm": pa.array(np.r_[rssi, np.full(n, np.nan)], from_pandas=True),
        "snr_db": pa.array(np.full(nh + n, np.nan), from_pandas=True),
        "batch_id": pa.array(np.zeros(nh + n, dtype=np.int64)),
    })
    # Gateway statistics every 2 hours; ~1 % of gateways stop reporting 10 hours before
    # the end (down), at least one whenever there are 20 or more.
    down = rng.random(G) < 0.01
    if G >= 20 and not down.any():
        down[rng.integers(0, G)] = True
    hours = t_end - np.arange(0, days * 24, 2)[::-1].astype("timedelta64[h]")
    sg, sh = np.meshgrid(np.arange(G), np.arange(len(hours)), indexing="ij")
    sg, sh = sg.ravel(), sh.ravel()
    alive = ~(down[sg] & (hours[sh] > t_end - np.timedelta64(10, "h")))
    sg, sh = sg[alive], sh[alive]
    stats = pa.table({
        "gateway_id": pa.array(gw_ids.tolist()).take(sg),
        "observed_at": pa.array(hours[sh].astype("datetime64[us]")),
        "is_up": pa.array(np.ones(len(sg), dtype=bool)),
        "batch_id": pa.array(np.zeros(len(sg), dtype=np.int64)),
    })
    gateways = pa.table({"gateway_id": gw_ids.tolist(), "kind": ["gateway"] * G,
                         "site": [f"iplant-{s}" for s in gw_site], "zone": [None] * G,
                         "capacity_devices": cap.astype(np.int32),
                         "batch_id": np.zeros(G, dtype=np.int64)})
    devices = pa.table({"device_id": dev_ids.tolist(), "device_type": ["t"] * n,
                        "manufacturer": ["m"] * n, "model": ["x"] * n,
                        "site": [f"iplant-{s}" for s in d_site], "zone": ["z"] * n})
    return dict(connections=connections, gateway_stats=stats, gateways=gateways,
                devices=devices)
