"""Firmware versions reported by the devices: one report per device per day."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import MODELS, Skeleton

#: The version every model runs in the plain skeleton.
BASE_VERSION = {m["model"]: v for m, v in zip(MODELS, ["2.4.1", "1.02.003", "V2.1.0_build45",
                                                         "FW_3_2_1", "2023.10.1", "R12B", "4.0.0"],
                                                strict=True)}


def generate(sk: Skeleton, out: SimOutput) -> None:
    d = sk.devices
    n, days = sk.n_devices, sk.config.days
    dev = np.repeat(np.arange(n), days)
    day = np.tile(np.arange(days), n)
    at = sk.hours[day * 24] + d["phase_s"][dev].astype("timedelta64[s]")
    version = np.array([BASE_VERSION[m] for m in d["model"]], dtype=object)
    out.add_rows("firmware_reports", dict(device_id=d["device_id"][dev], reported_at=at,
                                          version=version[dev]))
