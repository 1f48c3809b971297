"""Shared fixtures: small simulated fleets with known ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulated_fleet


@pytest.fixture(scope="session")
def empty_store_file(tmp_path_factory) -> str:
    """A new store, migrated once for the session and closed: never opened for writing.

    Migrating a new store (every table and view) takes about 0.5 s; copying this
    file and opening the copy about 0.05 s.
    """
    path = str(tmp_path_factory.mktemp("empty") / "empty.duckdb")
    Fleet(path).close()
    return path


def copy_store(src: str, dest: Path) -> Fleet:
    """Open a private copy of the closed store file ``src`` at ``dest``."""
    shutil.copyfile(src, dest)
    return Fleet(str(dest))


def remove_store(path: Path) -> None:
    """Delete a store file and its write-ahead log (keeps pytest's tmp dirs small)."""
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


@pytest.fixture
def fleet(empty_store_file, tmp_path_factory):
    """An empty store of this test's own: a copy of the session's new store, in a
    directory of its own (the test's ``tmp_path`` stays empty)."""
    path = tmp_path_factory.mktemp("fleet") / "fleet.duckdb"
    f = copy_store(empty_store_file, path)
    yield f
    f.close()
    remove_store(path)


@pytest.fixture(scope="session")
def small_sim_fleet():
    """A shared, read-mostly simulated fleet: 200 devices, 45 days, seed 11.

    Tests that write into it must not change what other tests read; build
    your own fleet with ``simulated_fleet`` when in doubt.
    """
    f = simulated_fleet(SimConfig(n_devices=200, days=45, seed=11))
    yield f
    f.close()
