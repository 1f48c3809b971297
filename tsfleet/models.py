"""Pydantic models of every ingest payload: the source of truth for ``schemas/``.

Each model describes one row of one ingest *kind*. Its ``spec`` says which
table the kind lands in, which fields form its key (a second row with the same
key is a duplicate) and whether a new row with a known key replaces the old
one (``upsert``, for dimensions such as devices) or is absorbed (``insert``,
for facts such as readings).

The ingest pipeline validates whole columns in DuckDB with the rules these
models declare (required fields, types, ``ge``/``le`` bounds, allowed values, the
length of text, ordered pairs of fields),
so a bulk file never goes through Python row by row; ``tests/test_models.py``
checks with Hypothesis that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The longest id (a field named ``*_id``) and the longest other text a row may give.
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 4096


def max_chars(field: str) -> int:
    """The most characters ``field`` may hold (:data:`MAX_ID_CHARS` for an id)."""
    return MAX_ID_CHARS if field.endswith("_id") else MAX_TEXT_CHARS


@dataclass(frozen=True)
class KindSpec:
    """Where a kind lands and how its rows are told apart; ``ordered``: pairs of fields
    whose first must be below its second (a range)."""

    table: str
    key: tuple[str, ...]
    mode: Literal["insert", "upsert"]
    time_field: str | None = None
    ordered: tuple[tuple[str, str], ...] = ()


class IngestModel(BaseModel):
    """Base of ingest row models: text is bounded (:func:`max_chars`) and the ``ordered``
    pairs of the kind's spec hold, as the pipeline's SQL checks them."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    spec: ClassVar[KindSpec]

    @model_validator(mode="after")
    def _row_rules(self):
        for name, value in self.__dict__.items():
            if isinstance(value, str) and len(value) > max_chars(name):
                raise ValueError(f"{name} must be at most {max_chars(name)} characters")
        for low, high in self.spec.ordered:
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and not a < b:
                raise ValueError(f"{low} must be below {high}")
        return self


_TS = (
    "UTC timestamp: ISO 8601 (an offset is converted to UTC; no offset means UTC) or Unix seconds."
)


class Reading(IngestModel):
    """One numeric observation of one metric of one device."""

    spec: ClassVar[KindSpec] = KindSpec(
        "readings", ("device_id", "observed_at", "metric"), "insert", "observed_at"
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    observed_at: datetime = Field(
        description="When the device measured the value. " + _TS, examples=["2026-03-01T10:00:00Z"]
    )
    metric: str = Field(
        min_length=1,
        description="Canonical metric name with its unit (see metric_catalog), or a "
        "known variant that is converted (battery_voltage_mv, "
        "temperature_f, ...; see metric_aliases).",
        examples=["battery_pct", "temperature_c", "battery_voltage_mv"],
    )
    value: float = Field(
        allow_inf_nan=False,
        description="The value in the metric's unit; must lie in the metric's physical range.",
        examples=[87.0, 21.4],
    )


class Device(IngestModel):
    """A device of the fleet, with its profile. Only ``device_id`` is required.

    Defaults of the optional profile fields, and what a missing value disables
    (see ``DEVICE_FIELD_USES``): ``device_type`` "unspecified" (per-type analyses
    pool these devices in one type), ``manufacturer`` and ``model`` "unknown"
    (firmware: no release catalog matches them), ``site`` and ``zone`` "unknown"
    (all such devices share one place: the environment analysis gives them the
    environment of monitors also without a zone, or none; zone and site views
    group them together).
    """

    spec: ClassVar[KindSpec] = KindSpec("devices", ("device_id",), "upsert")
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    # -- issue #18: only device_id is required (own block) ---------------------------------
    device_type: str = Field(
        "unspecified", min_length=1,
        description="Functional type; default 'unspecified' (per-type analyses pool these).",
        examples=["temp_humidity", "vibration"],
    )
    manufacturer: str = Field(
        "unknown", min_length=1,
        description="Vendor; default 'unknown' (no firmware release catalog match).",
        examples=["Acme"],
    )
    model: str = Field(
        "unknown", min_length=1,
        description="Vendor model name; default 'unknown' (no firmware release catalog match).",
        examples=["TH-200"],
    )
    site: str = Field(
        "unknown", min_length=1,
        description="Plant or site; default 'unknown' (site views group such devices together).",
        examples=["plant-north"],
    )
    zone: str = Field(
        "unknown", min_length=1,
        description="Zone within the site; default 'unknown': such devices share one zone, "
        "whose environment comes from monitors also without a zone (or none).",
        examples=["boiler-room"],
    )
    is_environment_monitor: bool | None = Field(
        None,
        description="The device is an environment monitor: its temperature, humidity and "
        "vibration describe its zone. Default: decided by its device_type being listed in "
        "the table environment_monitor_types (shipped with env_monitor).",
        examples=[True],
    )
    # -- end issue #18 ---------------------------------------------------------------------
    hardware_rev: str | None = Field(None, description="Hardware revision.", examples=["B"])
    # -- battery (issue #16: any chemistry; cell curve and cells as data) --
    battery_chemistry: str | None = Field(
        None,
        min_length=1,
        json_schema_extra={"x-lowercase": True},
        description="Battery chemistry, or mains (stored in lower case). Built in: li_socl2, "
        "li_mno2, alkaline, nimh, li_ion, lifepo4 (see battery_chemistries); any other is "
        "accepted, and a voltage-only device then needs its curve (kind battery_curves).",
        examples=["li_socl2", "li_mno2"],
    )
    battery_cells: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Cells in series; a reported voltage is divided by it before the cell "
        "curve is read (default: the chemistry's cells, else 1).",
        examples=[2],
    )
    battery_curve: str | None = Field(
        None,
        min_length=1,
        json_schema_extra={"x-lowercase": True},
        description="Cell curve (battery_curves.curve_id, lower case) the voltage is read through "
        "(default: the battery_chemistry).",
        examples=["acme_er14505"],
    )
    # -- end battery --

    @field_validator("battery_chemistry", "battery_curve", "measures", mode="after")
    @classmethod
    def _lower_names(cls, v: str | None) -> str | None:
        return v.lower() if isinstance(v, str) else v
    battery_capacity_mah: float | None = Field(
        None, gt=0, le=1e6, description="Nominal capacity, mAh.", examples=[19000.0]
    )
    reporting_interval_s: float | None = Field(
        None, gt=0, le=3e7, description="Nominal reporting interval, seconds.", examples=[3600.0]
    )
    installed_at: datetime | None = Field(
        None, description="Installation time. " + _TS, examples=["2025-11-02T08:00:00Z"]
    )
    measures: str | None = Field(
        None,
        json_schema_extra={"x-lowercase": True},
        description="Canonical metric of the device's primary sensor (stored in lower case, as "
        "metric names are matched). A name not in metric_catalog is accepted (the metric may "
        "be declared later) and raises the calibration finding unknown_metric, which names "
        "the metric meant or the declaration missing.",
        examples=["temperature_c"],
    )
    is_reference: bool = Field(
        False, description="A reference instrument for its zone.", examples=[False]
    )
    criticality: int = Field(
        3, ge=1, le=5, description="Importance, 1 (low) to 5 (vital).", examples=[3]
    )


class Gateway(IngestModel):
    """A gateway or access point that devices attach to."""

    spec: ClassVar[KindSpec] = KindSpec("gateways", ("gateway_id",), "upsert")
    gateway_id: str = Field(
        min_length=1, description="Gateway identifier.", examples=["gw-north-1"]
    )
    kind: Literal["gateway", "access_point"] = Field(
        "gateway", description="Gateway or access point.", examples=["gateway"]
    )
    site: str = Field(min_length=1, description="Plant or site.", examples=["plant-north"])
    zone: str | None = Field(None, description="Zone it is mounted in.", examples=["boiler-room"])
    capacity_devices: int = Field(
        gt=0, le=1_000_000, description="Vendor limit of attached devices.", examples=[200]
    )
    installed_at: datetime | None = Field(
        None, description="Commissioning time. " + _TS, examples=["2025-01-10T00:00:00Z"]
    )
    removed_at: datetime | None = Field(
        None, description="Decommissioning time. " + _TS, examples=[None]
    )


class FirmwareReport(IngestModel):
    """A device reporting the firmware it runs."""

    spec: ClassVar[KindSpec] = KindSpec(
        "firmware_reports", ("device_id", "reported_at"), "insert", "reported_at"
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    reported_at: datetime = Field(
        description="When the device reported. " + _TS, examples=["2026-03-01T10:00:00Z"]
    )
    version: str = Field(
        min_length=1,
        description="Firmware version string as the vendor writes it.",
        examples=["2.4.1", "FW_3_2_1"],
    )
    image_hash: str | None = Field(
        None, description="Digest of the running image, hex.", examples=["9f86d081884c7d65"]
    )


class FirmwareRelease(IngestModel):
    """A firmware release in the catalog of a model."""

    spec: ClassVar[KindSpec] = KindSpec(
        "firmware_releases", ("manufacturer", "model", "version"), "upsert"
    )
    manufacturer: str = Field(min_length=1, description="Vendor.", examples=["Acme"])
    model: str = Field(min_length=1, description="Vendor model name.", examples=["TH-200"])
    version: str = Field(min_length=1, description="Version string.", examples=["2.4.1"])
    released_at: datetime | None = Field(
        None, description="Release time. " + _TS, examples=["2026-01-15T00:00:00Z"]
    )
    status: Literal["target", "approved", "deprecated", "revoked"] = Field(
        description="target: the version devices should run; approved: allowed; deprecated: "
        "allowed but outdated; revoked: must not run.",
        examples=["target"],
    )
    hardware_revs: str | None = Field(
        None,
        description="Comma-separated compatible hardware revisions; empty or null means all.",
        examples=["A,B"],
    )
    image_hash: str | None = Field(
        None, description="Digest of the release image, hex.", examples=["9f86d081884c7d65"]
    )


class UpdateEvent(IngestModel):
    """A state change of one device in a firmware update campaign."""

    spec: ClassVar[KindSpec] = KindSpec(
        "update_events", ("campaign_id", "device_id", "event_at", "state"), "insert", "event_at"
    )
    campaign_id: str = Field(
        min_length=1, description="Campaign identifier.", examples=["c-2026-03"]
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    event_at: datetime = Field(
        description="When the state was entered. " + _TS, examples=["2026-03-01T10:00:00Z"]
    )
    state: Literal[
        "scheduled", "downloading", "downloaded", "updating", "succeeded", "failed", "rolled_back"
    ] = Field(description="Update state.", examples=["succeeded"])
    target_version: str | None = Field(
        None, description="Version the campaign installs.", examples=["2.4.1"]
    )
    reason: str | None = Field(
        None, description="Why it failed or rolled back.", examples=["integrity check failure"]
    )


class Calibration(IngestModel):
    """A calibration (or reference check) of a sensor."""

    spec: ClassVar[KindSpec] = KindSpec(
        "calibrations", ("device_id", "calibrated_at"), "insert", "calibrated_at"
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["th-00017"])
    calibrated_at: datetime = Field(description="When. " + _TS, examples=["2026-03-01T10:00:00Z"])
    reference_value: float | None = Field(
        None, allow_inf_nan=False, description="Value of the reference standard.", examples=[25.0]
    )
    measured_value: float | None = Field(
        None, allow_inf_nan=False, description="Value the sensor read against it.", examples=[25.6]
    )
    offset_applied: float = Field(
        0.0, allow_inf_nan=False, description="Offset applied.", examples=[-0.6]
    )
    gain_applied: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="Gain applied.", examples=[1.0]
    )
    performed_by: str | None = Field(None, description="Technician or lab.", examples=["j.doe"])


class Connection(IngestModel):
    """A device connecting to, leaving, or being heard by a gateway."""

    spec: ClassVar[KindSpec] = KindSpec(
        "connections", ("device_id", "gateway_id", "event_at", "event"), "insert", "event_at"
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    gateway_id: str = Field(
        min_length=1, description="Gateway identifier.", examples=["gw-north-1"]
    )
    event_at: datetime = Field(description="When. " + _TS, examples=["2026-03-01T10:00:00Z"])
    event: Literal["connect", "disconnect", "heard"] = Field(
        description="What happened.", examples=["heard"]
    )
    rssi_dbm: float | None = Field(
        None,
        ge=-160,
        le=10,
        allow_inf_nan=False,
        description="Signal strength at the gateway, dBm.",
        examples=[-92.0],
    )
    snr_db: float | None = Field(
        None,
        ge=-50,
        le=60,
        allow_inf_nan=False,
        description="Signal to noise ratio, dB.",
        examples=[7.5],
    )


class GatewayStat(IngestModel):
    """A health and load report of a gateway."""

    spec: ClassVar[KindSpec] = KindSpec(
        "gateway_stats", ("gateway_id", "observed_at"), "insert", "observed_at"
    )
    gateway_id: str = Field(
        min_length=1, description="Gateway identifier.", examples=["gw-north-1"]
    )
    observed_at: datetime = Field(description="When. " + _TS, examples=["2026-03-01T10:00:00Z"])
    is_up: bool = Field(
        True, description="False when the gateway reports itself down.", examples=[True]
    )
    cpu_pct: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False, description="CPU use, %.", examples=[41.0]
    )
    memory_pct: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False, description="Memory use, %.", examples=[63.0]
    )
    latency_ms: float | None = Field(
        None,
        ge=0,
        le=3.6e6,
        allow_inf_nan=False,
        description="Mean round-trip latency, ms.",
        examples=[120.0],
    )
    packet_loss_pct: float | None = Field(
        None, ge=0, le=100, allow_inf_nan=False, description="Messages lost, %.", examples=[0.4]
    )
    messages_per_s: float | None = Field(
        None,
        ge=0,
        le=1e7,
        allow_inf_nan=False,
        description="Mean message rate, 1/s.",
        examples=[3.2],
    )
    n_connected: int | None = Field(
        None,
        ge=0,
        le=10_000_000,
        description="Devices attached, as the gateway counts them.",
        examples=[180],
    )
    # Packet counters of the interval since the previous report, as a LoRaWAN gateway
    # bridge publishes them (ChirpStack gateway stats); null from other sources.
    n_rx_received: int | None = Field(
        None, ge=0, description="Uplink frames received (CRC errors included).", examples=[120]
    )
    n_rx_ok: int | None = Field(
        None, ge=0, description="Uplink frames received with a valid CRC.", examples=[118]
    )
    n_tx_requested: int | None = Field(
        None, ge=0, description="Downlink frames the network server asked it to send.",
        examples=[4],
    )
    n_tx_emitted: int | None = Field(
        None, ge=0, description="Downlink frames it emitted.", examples=[4]
    )
    n_tx_acknowledged: int | None = Field(
        None, ge=0, description="Downlink requests it acknowledged as scheduled (status OK).",
        examples=[4],
    )
    # SNMP (tsfleet snmp-poll): the agent's uptime and its IF-MIB interface counters'
    # increase since the previous poll, summed over the non-loopback interfaces.
    uptime_s: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Agent uptime (sysUpTime), s.",
        examples=[86400.0],
    )
    n_in_octets: int | None = Field(
        None, ge=0, description="Octets received since the previous poll (IF-MIB).",
        examples=[1048576],
    )
    n_out_octets: int | None = Field(
        None, ge=0, description="Octets sent since the previous poll (IF-MIB).",
        examples=[524288],
    )
    n_in_errors: int | None = Field(
        None, ge=0, description="Inbound packets with errors since the previous poll (IF-MIB).",
        examples=[0],
    )
    n_out_errors: int | None = Field(
        None, ge=0, description="Outbound packets with errors since the previous poll "
        "(IF-MIB).", examples=[0],
    )


class DeviceEvent(IngestModel):
    """Something that happened to a device."""

    spec: ClassVar[KindSpec] = KindSpec(
        "device_events", ("device_id", "event_at", "event"), "insert", "event_at"
    )
    device_id: str = Field(min_length=1, description="Device identifier.", examples=["pump-17"])
    event_at: datetime = Field(description="When. " + _TS, examples=["2026-03-01T10:00:00Z"])
    event: Literal[
        "failure", "reboot", "battery_replaced", "installed", "removed", "maintenance",
        "joined", "frame_counter_reset", "online", "offline",
    ] = Field(description="What happened (joined and frame_counter_reset come from LoRaWAN "
              "network servers; online and offline from Sparkplug B births and deaths, "
              "which device_offline reads).", examples=["failure"])
    detail: str | None = Field(None, description="Free text.", examples=["watchdog reset"])


class BatteryCurvePoint(IngestModel):
    """One point of a battery cell curve: the open-circuit voltage at a state of charge.

    A device reads its voltage through the curve named by its ``battery_curve`` (or its
    ``battery_chemistry``), divided by its cells in series; a user's points replace the
    built-in ones of the same curve, level and temperature.
    """

    spec: ClassVar[KindSpec] = KindSpec(
        "battery_curves", ("curve_id", "temperature_c", "level_pct"), "upsert"
    )
    curve_id: str = Field(
        min_length=1, json_schema_extra={"x-lowercase": True},
        description="Curve name (a chemistry or a vendor cell; stored in lower case).",
        examples=["acme_er14505"],
    )
    level_pct: float = Field(
        ge=0, le=100, allow_inf_nan=False, description="State of charge, %.", examples=[50.0]
    )
    voltage_v: float = Field(
        gt=0, le=100, allow_inf_nan=False,
        description="Open-circuit voltage of `cells` cells in series at that level, V.",
        examples=[3.58],
    )
    cells: int = Field(
        1, ge=1, le=64, description="Cells in series the voltage is measured over.", examples=[1]
    )
    @field_validator("curve_id", mode="after")
    @classmethod
    def _lower_curve_id(cls, v: str) -> str:
        return v.lower()

    temperature_c: float = Field(
        20.0, ge=-60, le=100, allow_inf_nan=False,
        description="Temperature of the points, C; the conversion uses each curve's points at "
        "the temperature nearest 20 C.",
        examples=[20.0],
    )


# -- declared metrics (issue 17) ---------------------------------------------------
class MetricDeclaration(IngestModel):
    """A metric a user declares: its name, unit, physical range and drift tolerance.

    Readings of a metric that is neither in ``metric_catalog`` nor an alias are
    quarantined (``unknown_metric``); declaring the metric adds it to the
    catalog and re-ingests them (see docs/calibration.md, "Declaring metrics").
    """

    spec: ClassVar[KindSpec] = KindSpec("metric_declarations", ("metric",), "upsert",
                                        ordered=(("min_value", "max_value"),))
    metric: str = Field(
        min_length=1, json_schema_extra={"x-lowercase": True},
        description="Canonical metric name ending in its unit (stored in lower case, as "
        "readings' metric names are matched).",
        examples=["flow_lpm"])

    @field_validator("metric", mode="after")
    @classmethod
    def _lower_metric(cls, v: str) -> str:
        return v.lower()

    unit: str = Field(min_length=1, description="Unit symbol.", examples=["l/min"])
    min_value: float = Field(
        allow_inf_nan=False, description="Lowest physically possible value, in the unit.",
        examples=[0.0])
    max_value: float = Field(
        allow_inf_nan=False, description="Highest physically possible value, in the unit "
        "(must exceed min_value).", examples=[500.0])
    quantity: str | None = Field(None, description="What it measures.", examples=["flow"])
    description: str | None = Field(None, description="Free text.",
                                    examples=["Volumetric flow, litres per minute."])
    drift_tolerance_pct: float | None = Field(
        None, gt=0, le=100, description="Recalibration tolerance of its sensors, % of scale "
        "(default 2; a device type's tolerance wins).", examples=[2.0])
    min_scale: float | None = Field(
        None, gt=0, description="Smallest scale drift percentages refer to, in the unit "
        "(default: the zone's mean absolute reading).", examples=[50.0])
    is_environmental: bool | None = Field(
        None, description="The metric is an environmental factor (dust, CO2, ...): the "
        "environment monitors' readings of it are analysed like temperature (a linear and a "
        "threshold term per device type, envelopes, limits, recommendations; see "
        "docs/environment.md).", examples=[True])


#: Every ingest kind by name.
KINDS: dict[str, type[IngestModel]] = {
    "readings": Reading,
    "devices": Device,
    "gateways": Gateway,
    "firmware_reports": FirmwareReport,
    "firmware_releases": FirmwareRelease,
    "update_events": UpdateEvent,
    "calibrations": Calibration,
    "connections": Connection,
    "gateway_stats": GatewayStat,
    "device_events": DeviceEvent,
    "battery_curves": BatteryCurvePoint,


    "metrics": MetricDeclaration,
}

# -- issue #18: what a missing device field disables ---------------------------------------
#: Optional ``devices`` fields -> the analyses that need a real value (a default disables them
#: for that device or lumps such devices together).
DEVICE_FIELD_USES: dict[str, str] = {
    "device_type": "per-type power, firmware and environment analyses pool the device with "
    "the other 'unspecified' devices",
    "manufacturer": "firmware release matching (catalog, security advisories)",
    "model": "firmware release matching (catalog, security advisories)",
    "site": "per-site views and the technician's schedule group it under 'unknown'",
    "zone": "environment exposure (it only gets monitors also in zone 'unknown'), zone "
    "recommendations and network zone load",
    "installed_at": "age: the environment models take the start of the window as install time",
    "battery_chemistry": "the chemistry's voltage curve (battery level from voltage)",
    "reporting_interval_s": "packet loss and offline detection against the nominal interval",
    "measures": "the device's own reading as its environment (the zone's is used instead)",
}
