"""A deterministic simulated fleet with known ground truth.

>>> from tsfleet.simulate import SimConfig, simulate
>>> sim = simulate(SimConfig(n_devices=20, days=3, seed=1))
>>> sim.skeleton.n_devices
20

``simulate`` builds the shared skeleton (sites, zones, environment, devices,
gateways), runs one generator per domain on it, and applies delivery
(gaps, lateness, duplicates, disorder). ``SimFleet.write(fleet)`` ingests the
result through the normal ingest path, in arrival order, and stores the
ground truth in the ``sim`` schema for tests and benchmarks to score against.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tsfleet.simulate import calibration, environment, firmware, network, power
from tsfleet.simulate.delivery import Delivered, DeliveryConfig, deliver
from tsfleet.simulate.output import SimOutput, as_table
from tsfleet.simulate.skeleton import MODELS, SimConfig, Skeleton, build_skeleton

#: Domain generators in the order they run; a later one may read what an
#: earlier one left in ``skeleton.extra``.
GENERATORS: list[tuple[str, Callable[[Skeleton, SimOutput], None]]] = [
    ("firmware", firmware.generate),
    ("power", power.generate),
    ("calibration", calibration.generate),
    ("environment", environment.generate),
    ("network", network.generate),
]

__all__ = ["MODELS", "SimConfig", "SimFleet", "Skeleton", "simulate", "simulated_fleet"]


@dataclass
class SimFleet:
    """A simulated fleet ready to be written into a store."""

    skeleton: Skeleton
    output: SimOutput
    delivered: Delivered

    @property
    def n_readings(self) -> int:
        return len(self.delivered.value)

    def device_table(self) -> pa.Table:
        d = self.skeleton.devices
        cols = ["device_id", "device_type", "manufacturer", "model", "hardware_rev", "site", "zone",
                "battery_chemistry", "battery_capacity_mah", "reporting_interval_s", "installed_at",
                "measures", "is_reference", "criticality"]
        return as_table({c: d[c] for c in cols})

    def readings_chunks(self):
        """Arrow tables of readings, one per arrival chunk, in arrival order."""
        dl, d = self.delivered, self.skeleton.devices
        names = pa.array(d["device_id"].tolist(), pa.string())
        metric_names = pa.array(dl.metrics, pa.string())
        t0 = self.skeleton.hours[0].astype("datetime64[us]")
        bounds = np.flatnonzero(np.diff(dl.chunk)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(dl.chunk)], strict=True):
            dev = dl.device_idx[lo:hi]
            seconds = dl.hour_idx[lo:hi].astype(np.int64) * 3600 + d["phase_s"][dev]
            yield pa.table({
                "device_id": names.take(pa.array(dev)),
                "observed_at": pa.array(t0 + seconds.astype("timedelta64[s]")),
                "metric": metric_names.take(pa.array(dl.metric[lo:hi].astype(np.int32))),
                "value": pa.array(dl.value[lo:hi]),
            })

    def write(self, fleet, progress: bool = False) -> dict[str, int]:
        """Ingest everything into ``fleet`` and store the truth in ``sim``. Returns row counts."""
        counts: dict[str, int] = {}
        counts["devices"] = fleet.ingest("devices", self.device_table()).n_accepted
        gw = self.skeleton.gateways
        counts["gateways"] = fleet.ingest("gateways", as_table(
            {c: gw[c] for c in ("gateway_id", "kind", "site", "zone", "capacity_devices")}
        )).n_accepted
        for kind, tables in self.output.rows.items():
            for t in tables:
                counts[kind] = counts.get(kind, 0) + fleet.ingest(kind, t).n_accepted
        n = 0
        for i, chunk in enumerate(self.readings_chunks()):
            n += fleet.ingest("readings", chunk).n_accepted
            if progress and i % 10 == 0:
                print(f"  readings: {n:,} stored", file=sys.stderr)
        counts["readings"] = n
        write_truth(fleet.con, self)
        return counts


def write_truth(con, sim: SimFleet) -> None:
    con.execute("create schema if not exists sim")
    truth = dict(sim.output.truth)
    d = sim.skeleton.devices
    truth["devices"] = as_table({k: d[k] for k in ("device_id", "model_idx", "zone_idx",
                                                    "voltage_only", "phase_s")})
    cfg = sim.skeleton.config
    truth["config"] = pa.table({"n_devices": [cfg.n_devices], "days": [cfg.days],
                                "seed": [cfg.seed], "start": [cfg.start]})
    for name, table in truth.items():
        con.complete()
        con.register("_tsf_truth", table)
        con.execute(f'create or replace table sim."{name}" as select * from _tsf_truth')
        con.unregister("_tsf_truth")


def simulated_fleet(config: SimConfig | None = None, path: str | None = None, **fleet_kw):
    """Simulate and write into a new store (in memory unless ``path``); returns the Fleet."""
    from tsfleet.fleet import Fleet

    fleet = Fleet(path, **fleet_kw) if path else Fleet(memory=True, **fleet_kw)
    simulate(config).write(fleet)
    return fleet


def simulate(config: SimConfig | None = None, delivery: DeliveryConfig | None = None) -> SimFleet:
    """Generate a fleet. Same config, same data."""
    config = config or SimConfig()
    sk = build_skeleton(config)
    out = SimOutput()
    for _name, gen in GENERATORS:
        gen(sk, out)
    delivered, delivery_truth = deliver(sk, out.readings, delivery or DeliveryConfig())
    out.add_truth("delivery", delivery_truth)
    return SimFleet(sk, out, delivered)
