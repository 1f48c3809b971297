"""The fleet skeleton every domain generator shares: sites, zones and their
environment, device models, devices and gateways.

Everything is vectorized numpy and seeded. Each domain generator draws from
its own random stream (:meth:`Skeleton.rng`), so adding or changing one
domain's phenomena never changes another domain's data.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from tsfleet.errors import InvalidParameter
from tsfleet.words import plural

#: Device models of the simulated fleet. ``voltage_only`` devices report
#: battery voltage and no percentage; ``pct_step`` is the quantization of the
#: reported percentage (1 = integer percent).
MODELS: list[dict] = [
    dict(
        manufacturer="Acme",
        model="TH-200",
        device_type="temp_humidity",
        prefix="th",
        measures="temperature_c",
        chemistry="li_socl2",
        capacity_mah=19000,
        interval_s=3600,
        hardware_revs=("A", "B"),
        voltage_only=False,
        pct_step=1.0,
        share=0.30,
    ),
    dict(
        manufacturer="Acme",
        model="RH-310",
        device_type="humidity",
        prefix="rh",
        measures="humidity_pct",
        chemistry="li_socl2",
        capacity_mah=8500,
        interval_s=3600,
        hardware_revs=("A",),
        voltage_only=False,
        pct_step=1.0,
        share=0.15,
    ),
    dict(
        manufacturer="Borealis",
        model="VB-9",
        device_type="vibration",
        prefix="vb",
        measures="vibration_g",
        chemistry="li_socl2",
        capacity_mah=13000,
        interval_s=3600,
        hardware_revs=("1", "2"),
        voltage_only=False,
        pct_step=0.5,
        share=0.15,
    ),
    dict(
        manufacturer="Cirrus",
        model="PX-3",
        device_type="pressure",
        prefix="px",
        measures="pressure_kpa",
        chemistry="alkaline",
        capacity_mah=2800,
        interval_s=3600,
        hardware_revs=("r1", "r2"),
        voltage_only=True,
        pct_step=None,
        share=0.15,
    ),
    dict(
        manufacturer="Dyna",
        model="GS-1",
        device_type="gas",
        prefix="gs",
        measures="co2_ppm",
        chemistry="li_ion",
        capacity_mah=3400,
        interval_s=3600,
        hardware_revs=("v1", "v2"),
        voltage_only=False,
        pct_step=1.0,
        share=0.10,
    ),
    dict(
        manufacturer="Edge",
        model="TM-1d",
        device_type="temperature",
        prefix="tm",
        measures="temperature_c",
        chemistry="alkaline",
        capacity_mah=2800,
        interval_s=86400,
        hardware_revs=("A",),
        voltage_only=False,
        pct_step=1.0,
        share=0.05,
    ),
    dict(
        manufacturer="Fenwick",
        model="EM-4",
        device_type="env_monitor",
        prefix="em",
        measures="temperature_c",
        chemistry="mains",
        capacity_mah=None,
        interval_s=3600,
        hardware_revs=("4",),
        voltage_only=False,
        pct_step=None,
        share=0.10,
    ),
]

#: Zone kinds: share of zones, base temperature (C), daily amplitude (C),
#: base humidity (%RH), base vibration (g RMS).
ZONE_KINDS = {
    "normal": dict(share=0.45, temp=21.0, amp=2.0, hum=45.0, vib=0.05),
    "hot": dict(share=0.15, temp=38.0, amp=5.0, hum=30.0, vib=0.08),
    "humid": dict(share=0.15, temp=26.0, amp=2.5, hum=86.0, vib=0.05),
    "vibrating": dict(share=0.15, temp=24.0, amp=3.0, hum=40.0, vib=0.9),
    "cold": dict(share=0.10, temp=2.0, amp=1.5, hum=70.0, vib=0.03),
}


@dataclass(frozen=True)
class SimConfig:
    """Size and seed of a simulated fleet."""

    n_devices: int = 400
    days: int = 60
    seed: int = 7
    start: datetime = datetime(2026, 6, 1)
    zones_per_site: int = 5
    devices_per_site: int = 250

    def __post_init__(self) -> None:
        if self.days < 2 or self.n_devices < 10:
            raise InvalidParameter(f"a simulated fleet needs at least 10 devices and 2 days, got "
                                   f"{plural(self.n_devices, 'device')} and "
                                   f"{plural(self.days, 'day')}")
        if self.seed < 0:  # numpy's generators take no negative seed
            raise InvalidParameter(f"a simulated fleet's seed must be a whole number >= 0, "
                                   f"got {self.seed}")


@dataclass
class Skeleton:
    """What every generator shares. Per-hour arrays have length ``n_hours``."""

    config: SimConfig
    hours: np.ndarray  # datetime64[s], start of each hour
    sites: np.ndarray  # site names
    zones: dict[str, np.ndarray]  # zone, site, kind, base values
    env: dict[str, np.ndarray]  # (n_zones, n_hours): temperature_c, humidity_pct, vibration_g
    devices: dict[str, np.ndarray]  # one entry per device
    gateways: dict[str, np.ndarray]  # one entry per gateway
    extra: dict[str, object] = field(default_factory=dict)  # shared state between generators

    @property
    def n_hours(self) -> int:
        return len(self.hours)

    @property
    def n_devices(self) -> int:
        return len(self.devices["device_id"])

    def rng(self, domain: str) -> np.random.Generator:
        """An independent random stream for ``domain``, fixed by the seed."""
        return np.random.default_rng([self.config.seed, zlib.crc32(domain.encode())])

    def device_env(self, name: str) -> np.ndarray:
        """(n_devices, n_hours) environment ``name`` at each device's zone."""
        return self.env[name][self.devices["zone_idx"]]


def build_skeleton(config: SimConfig) -> Skeleton:
    rng = np.random.default_rng([config.seed, 1])
    n_hours = config.days * 24
    hours = np.datetime64(config.start, "s") + np.arange(n_hours) * np.timedelta64(3600, "s")
    n_sites = int(np.clip(round(config.n_devices / config.devices_per_site), 1, 200))
    sites = np.array([f"plant-{chr(97 + i % 26)}{i // 26 or ''}" for i in range(n_sites)])

    # Zones and their environment -------------------------------------------------
    n_zones = n_sites * config.zones_per_site
    kinds = np.array(list(ZONE_KINDS))
    shares = np.array([ZONE_KINDS[k]["share"] for k in kinds])
    zone_kind = rng.choice(kinds, size=n_zones, p=shares / shares.sum())
    zone_kind[:: config.zones_per_site] = "normal"  # every site has a normal zone
    zone_site = np.repeat(sites, config.zones_per_site)
    zone_name = np.array(
        [
            f"{s}/z{i % config.zones_per_site + 1}-{k}"
            for i, (s, k) in enumerate(zip(zone_site, zone_kind, strict=True))
        ]
    )
    base_t = np.array([ZONE_KINDS[k]["temp"] for k in zone_kind]) + rng.normal(0, 1.5, n_zones)
    amp = np.array([ZONE_KINDS[k]["amp"] for k in zone_kind]) * rng.uniform(0.7, 1.3, n_zones)
    base_h = np.array([ZONE_KINDS[k]["hum"] for k in zone_kind]) + rng.normal(0, 3, n_zones)
    base_v = np.array([ZONE_KINDS[k]["vib"] for k in zone_kind]) * rng.uniform(0.7, 1.3, n_zones)

    h = np.arange(n_hours)
    hour_of_day = h % 24
    daily = np.sin(2 * np.pi * (hour_of_day - 9) / 24)  # peak mid-afternoon
    seasonal = 3.0 * np.sin(2 * np.pi * h / (24 * 365) + rng.uniform(0, 2 * np.pi))
    weather = _ar1(rng, (n_sites, n_hours), phi=0.97, sigma=0.35)  # shared per site
    site_of_zone = np.repeat(np.arange(n_sites), config.zones_per_site)
    local = _ar1(rng, (n_zones, n_hours), phi=0.9, sigma=0.25)
    temp = (
        base_t[:, None]
        + amp[:, None] * daily[None, :]
        + seasonal[None, :]
        + weather[site_of_zone]
        + local
    )
    hum = np.clip(
        base_h[:, None]
        - 1.8 * (temp - base_t[:, None])
        + _ar1(rng, (n_zones, n_hours), phi=0.95, sigma=0.8),
        3,
        99.5,
    )
    shift = ((hour_of_day >= 6) & (hour_of_day < 22)).astype(float)  # two work shifts
    vib = (
        base_v[:, None]
        * (0.4 + 0.8 * shift[None, :])
        * np.exp(rng.normal(0, 0.15, (n_zones, n_hours)))
    )
    zones = dict(
        zone=zone_name,
        site=zone_site,
        kind=zone_kind,
        base_temperature_c=base_t,
        daily_amplitude_c=amp,
        base_humidity_pct=base_h,
        base_vibration_g=base_v,
    )
    env = dict(temperature_c=temp, humidity_pct=hum, vibration_g=vib)

    # Devices -----------------------------------------------------------------------
    n = config.n_devices
    share = np.array([m["share"] for m in MODELS])
    model_idx = rng.choice(len(MODELS), size=n, p=share / share.sum())
    zone_idx = rng.integers(0, n_zones, size=n)
    prefix = np.array([MODELS[i]["prefix"] for i in model_idx])
    device_id = np.char.add(
        np.char.add(prefix, "-"), np.char.zfill(np.arange(1, n + 1).astype(str), 5)
    )
    hw = np.array(
        [
            MODELS[i]["hardware_revs"][rng.integers(len(MODELS[i]["hardware_revs"]))]
            for i in model_idx
        ]
    )
    installed = np.datetime64(config.start, "s") - rng.integers(30, 900, size=n) * np.timedelta64(
        86400, "s"
    )

    def attr(key: str) -> np.ndarray:
        return np.array([MODELS[i][key] for i in model_idx], dtype=object)

    devices = dict(
        device_id=device_id.astype(object),
        model_idx=model_idx,
        zone_idx=zone_idx,
        device_type=attr("device_type"),
        manufacturer=attr("manufacturer"),
        model=attr("model"),
        hardware_rev=hw.astype(object),
        site=zone_site[zone_idx].astype(object),
        zone=zone_name[zone_idx].astype(object),
        battery_chemistry=attr("chemistry"),
        battery_capacity_mah=np.array(
            [MODELS[i]["capacity_mah"] or np.nan for i in model_idx], dtype=float
        ),
        reporting_interval_s=np.array([MODELS[i]["interval_s"] for i in model_idx], dtype=float),
        installed_at=installed,
        measures=attr("measures"),
        is_reference=np.zeros(n, dtype=bool),
        criticality=rng.choice([1, 2, 3, 4, 5], size=n, p=[0.1, 0.2, 0.4, 0.2, 0.1]),
        voltage_only=np.array([MODELS[i]["voltage_only"] for i in model_idx], dtype=bool),
        phase_s=rng.integers(0, 3600, size=n),
    )
    devices["battery_chemistry"][devices["battery_chemistry"] == "mains"] = "mains"

    # Gateways: enough capacity per site, with spare -----------------------------------
    gw_id, gw_site, gw_zone, gw_cap = [], [], [], []
    for s_i, site in enumerate(sites):
        n_site = int((devices["site"] == site).sum())
        caps = []
        while sum(caps) < n_site * 1.6 or len(caps) < 2:
            caps.append(int(rng.choice([100, 150, 250])))
        for j, cap in enumerate(caps):
            gw_id.append(f"gw-{site}-{j + 1}")
            gw_site.append(site)
            gw_zone.append(zone_name[s_i * config.zones_per_site + j % config.zones_per_site])
            gw_cap.append(cap)
    gateways = dict(
        gateway_id=np.array(gw_id, dtype=object),
        site=np.array(gw_site, dtype=object),
        zone=np.array(gw_zone, dtype=object),
        capacity_devices=np.array(gw_cap),
        kind=np.array(["gateway"] * len(gw_id), dtype=object),
    )
    return Skeleton(config, hours, sites, zones, env, devices, gateways)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sigma: float) -> np.ndarray:
    """AR(1) noise along the last axis, vectorized over the first."""
    eps = rng.normal(0, sigma, shape)
    out = np.empty(shape)
    out[:, 0] = eps[:, 0] / np.sqrt(1 - phi**2)
    # A recursive filter: scipy.signal.lfilter would do, but numpy alone is enough here.
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out
