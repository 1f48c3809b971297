"""Sensor quality: expected values, drift detection, faults, calibration registry
and the recalibration schedule. ``fleet.calibration`` is a :class:`Calibration`."""

from tsfleet.calibration.api import Calibration

__all__ = ["Calibration"]
