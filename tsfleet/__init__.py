"""tsfleet: a monitoring backend for battery-powered industrial IoT fleets."""

from typing import TYPE_CHECKING

from tsfleet.errors import (
    IngestError,
    InvalidParameter,
    ReadOnlyStore,
    StoreError,
    TsfleetError,
    UnknownDevice,
    UnknownKind,
)

if TYPE_CHECKING:  # imported on first use, so that ``tsfleet --help`` starts fast
    from tsfleet.fleet import Fleet
    from tsfleet.ingest import IngestReport

__all__ = [
    "Fleet",
    "IngestError",
    "IngestReport",
    "InvalidParameter",
    "ReadOnlyStore",
    "StoreError",
    "TsfleetError",
    "UnknownDevice",
    "UnknownKind",
]
__version__ = "0.1.0"

_LAZY = {"Fleet": "tsfleet.fleet", "IngestReport": "tsfleet.ingest"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tsfleet' has no attribute {name!r}")
