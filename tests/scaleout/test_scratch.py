"""The tasks' scratch stores: where they go, and that a worker leaves nothing behind."""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace

from tsfleet.scaleout import engine, lake


def test_a_task_leaves_no_store_or_template_behind(tmp_path, monkeypatch):
    """Every worker process used to leave its migrated template store (8 MB) in the
    temporary folder for good: 168 of them on the development machine (1.4 GB)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TSFLEET_SCRATCH", str(tmp_path))
    monkeypatch.setattr(lake, "_templates", {})
    with lake.BucketStore() as fleet:
        assert fleet.con.execute("select count(*) from devices").fetchone() == (0,)
        assert [p.name.startswith("tsfleet-bucket-") for p in tmp_path.iterdir()] == [True]
    with lake.BucketStore() as fleet:     # the template, made once, serves again
        assert fleet.con.execute("select count(*) from devices").fetchone() == (0,)
    assert list(tmp_path.iterdir()) == []


def test_scratch_is_dev_shm_only_with_room(monkeypatch):
    monkeypatch.delenv("TSFLEET_SCRATCH", raising=False)

    def free(n):
        return lambda path: SimpleNamespace(f_bavail=n, f_frsize=4096)

    monkeypatch.setattr(os, "access", lambda path, mode: True)
    monkeypatch.setattr(os, "statvfs", free(lake.SHM_MIN_FREE_BYTES // 4096))
    assert lake._scratch() == "/dev/shm"
    monkeypatch.setattr(os, "statvfs", free(64 * 1024 ** 2 // 4096))   # a container's 64 MB
    assert lake._scratch() is None

    def missing(path):
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "statvfs", missing)                          # no /dev/shm
    assert lake._scratch() is None
    monkeypatch.setenv("TSFLEET_SCRATCH", "/somewhere/else")
    assert lake._scratch() == "/somewhere/else"


def _worker_settings():
    import dask

    return (dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.worker.memory.monitor-interval"),
            os.environ.get("OMP_NUM_THREADS"), "MALLOC_TRIM_THRESHOLD_" in os.environ)


def test_a_local_cluster_worker_runs_without_the_dashboard_housekeeping():
    """tsfleet's LocalCluster workers (processes) run with one BLAS thread, glibc's own trim
    threshold, no statistical profiler and a memory check every second (engine.QUIET_CLUSTER:
    about 9% less worker CPU in bench/distributed.py)."""
    client, cluster = engine.open_client(None, 1, True)
    try:
        got = list(client.run(_worker_settings).values())
    finally:
        client.close()
        cluster.close()
    assert got == [(False, "1s", "1", False)]
