"""tsfleet: a monitoring backend for battery-powered industrial IoT fleets."""

from tsfleet.errors import (
    IngestError,
    InvalidParameter,
    ReadOnlyStore,
    StoreError,
    TsfleetError,
    UnknownDevice,
    UnknownKind,
)
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
