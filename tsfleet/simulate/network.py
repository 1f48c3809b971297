"""Devices attached to gateways of their site: connections and RSSI."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("network")
    d, g = sk.devices, sk.gateways
    n = sk.n_devices
    gw_of = np.empty(n, dtype=np.int64)
    for site in sk.sites:
        devs = np.flatnonzero(d["site"] == site)
        gws = np.flatnonzero(g["site"] == site)
        gw_of[devs] = rng.choice(gws, size=len(devs))
    base_rssi = rng.uniform(-115, -70, size=n)
    grid = base_rssi[:, None] + rng.normal(0, 2.5, size=(n, sk.n_hours))
    out.add_grid("rssi_dbm", np.arange(n), np.round(grid))
    out.add_rows("connections", dict(
        device_id=d["device_id"], gateway_id=g["gateway_id"][gw_of],
        event_at=np.full(n, sk.hours[0]), event=np.full(n, "connect", dtype=object),
        rssi_dbm=np.round(base_rssi)))
    out.add_truth("attachment", dict(device_id=d["device_id"], gateway_id=g["gateway_id"][gw_of],
                                     base_rssi_dbm=base_rssi))
