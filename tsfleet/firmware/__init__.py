"""Firmware management: version ordering, inventory, catalog and OSV findings,
ingest-time security checks, update campaigns and compliance."""

from tsfleet.firmware.api import Firmware
from tsfleet.firmware.versions import UnparsableVersion, Version, compare, parse

__all__ = ["Firmware", "UnparsableVersion", "Version", "compare", "parse"]
