"""Sharing the data: consistent snapshots, a partitioned Parquet export, the catalog."""

from tsfleet.share.export import ExportReport, device_bucket, export_parquet
from tsfleet.share.schedule import SnapshotScheduler, parse_interval
from tsfleet.share.snapshot import SnapshotReport, take_snapshot

__all__ = ["ExportReport", "SnapshotReport", "SnapshotScheduler", "device_bucket",
           "export_parquet", "parse_interval", "take_snapshot"]
