"""Fixtures for the share tests: a small file-backed simulated store, a busy writer.

The helpers are handed to tests as fixtures (``reading_batch``, ``busy_writer``,
``invariants``), so no test imports this file.
"""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulated_fleet

SIM = SimConfig(n_devices=80, days=12, seed=5)


@pytest.fixture(scope="session")
def sim_store_file(tmp_path_factory) -> str:
    """A closed store file with a simulated fleet (80 devices, 12 days from 2026-06-01)."""
    path = str(tmp_path_factory.mktemp("share") / "simulated.duckdb")
    simulated_fleet(SIM, path=path).close()
    return path


@pytest.fixture
def live(sim_store_file, tmp_path) -> Fleet:
    """A writable copy of the simulated store, owned by this test."""
    path = tmp_path / "live.duckdb"
    shutil.copyfile(sim_store_file, path)
    fleet = Fleet(str(path))
    yield fleet
    fleet.close()


def make_reading_batch(devices: list[str], start: datetime, n_hours: int, metric: str = "co2_ppm",
                  value: float = 420.0) -> pa.Table:
    """Hourly readings of ``metric`` for ``devices`` from ``start`` (a duplicate-free batch)."""
    hours = np.arange(n_hours)
    dev = np.repeat(np.array(devices, dtype=object), n_hours)
    at = np.tile(np.datetime64(start, "s") + hours.astype("timedelta64[h]"), len(devices))
    return pa.table({"device_id": pa.array(dev.tolist(), pa.string()),
                     "observed_at": pa.array(at.astype("datetime64[us]")),
                     "metric": pa.array([metric] * len(dev), pa.string()),
                     "value": pa.array(np.full(len(dev), value))})


class BusyWriter:
    """Ingests readings into ``fleet`` from a thread, batch after batch, until stopped."""

    def __init__(self, fleet: Fleet, start: datetime | None = None, n_hours: int = 24):
        self.fleet = fleet
        self.devices = [r["device_id"] for r in fleet.query(
            "select device_id from devices order by device_id limit 40")]
        self.at = start or datetime(2026, 7, 1)
        self.n_hours = n_hours
        self.n_batches = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = make_reading_batch(self.devices, self.at, self.n_hours)
                self.fleet.ingest("readings", batch)
                self.at += timedelta(hours=self.n_hours)
                self.n_batches += 1
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def __enter__(self) -> BusyWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.error:
            raise self.error


def count_invariants(con) -> dict:
    """Counts that agree only in a consistent copy: readings vs ingest log vs device_latest."""
    return dict(zip(("readings", "accepted", "latest"), con.execute(
        "select (select count(*) from readings), "
        "(select coalesce(sum(n_accepted), 0) from ingest_batches where kind = 'readings'), "
        "(select coalesce(sum(n_readings), 0) from device_latest)").fetchone(), strict=True))


@pytest.fixture
def reading_batch():
    """``reading_batch(devices, start, n_hours)``: an Arrow table of new readings."""
    return make_reading_batch


@pytest.fixture
def busy_writer():
    """``with busy_writer(fleet) as w:`` ingests readings from a thread until the block ends."""
    return BusyWriter


@pytest.fixture
def invariants():
    """``invariants(con)``: readings, accepted and device_latest counts (equal when consistent)."""
    return count_invariants
