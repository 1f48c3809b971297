"""``tsfleet serve`` analyses on its cadence while ingesting; a failing analysis is
recorded and retried and ingestion goes on (real mosquitto on 127.0.0.1)."""

from __future__ import annotations

import time

import pytest

from tests.live.live_support import T0, Publisher, RunningServer, senml_json
from tsfleet import Fleet
from tsfleet.power import Power

pytestmark = pytest.mark.network


def pack(device: str, i: int, n: int = 10) -> list[dict]:
    return [{"bn": f"{device}:", "bt": T0 + i * 600, "n": "battery", "u": "%EL", "v": 90.0}] + [
        {"n": "battery", "u": "%EL", "v": 90.0 - k * 0.01, "t": k * 60} for k in range(1, n)]


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_failing_analysis_is_recorded_and_retried_and_ingestion_goes_on(
        broker, tmp_path, monkeypatch):
    def boom(self, devices=None):
        raise RuntimeError("injected power failure")

    monkeypatch.setattr(Power, "analyze", boom)
    db = str(tmp_path / "serve.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-analyze",
                        batch_delay_s=0.2,
                        analyze_every={"firmware": 0.3, "power": 0.3, "alerts": 0.3})
    cadence = srv.server.cadence
    pub = Publisher(broker.port)
    n = 0
    for _round in range(3):  # publish, then let the cadence fail power at least once more
        failed = cadence.n_failed
        for i in range(20):
            pub.publish(f"fleet/s-{i % 4}/senml", senml_json(pack(f"s-{i % 4}", n)))
            n += 1
        srv.sync()
        wait_for(lambda f=failed: cadence.n_failed > f)
    assert srv.server.writer.stats.n_accepted == n * 10  # nothing stalled by the failures
    assert cadence.n_runs > cadence.n_failed  # firmware and alerts ran fine meanwhile
    srv.stop()  # clean shutdown: flushed and acknowledged
    pub.close()

    with Fleet(db, read_only=True) as f:
        assert f.query("select count(*) as n from readings")[0]["n"] == n * 10
        runs = f.query("select analysis, status, error from analysis_runs order by run_id")
        power = [r for r in runs if r["analysis"] == "power"]
        assert len(power) >= 3 and {r["status"] for r in power} == {"failed"}
        assert all("injected power failure" in r["error"] for r in power)
        assert {r["status"] for r in runs if r["analysis"] != "power"} == {"ok"}
        fresh = {r["analysis"]: r for r in f.query("select * from freshness")}
        assert fresh["power"]["status"] == "failed" and fresh["power"]["last_ok_at"] is None
        assert fresh["power"]["n_failures_since_ok"] == len(power)
        assert fresh["firmware"]["status"] == "ok"

    monkeypatch.undo()  # fixed: the next serve catches up, nothing is redelivered
    again = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-analyze",
                          analyze_every={"power": 0.3})
    wait_for(lambda: again.server.cadence.n_runs >= 1)
    again.sync()
    assert again.server.writer.stats.n_redelivered == 0
    assert again.server.n_received == 0
    again.stop()
    with Fleet(db, read_only=True) as f:
        p = f.query("select * from freshness where analysis = 'power'")[0]
        assert (p["status"], p["pending_batches"], p["stale_s"]) == ("ok", 0, 0)


def test_serve_fits_the_environment_model_on_one_thread_and_a_command_on_every_core(
        broker, tmp_path, monkeypatch):
    """The environment model's refits may run on several threads (issue #18, session 15);
    in ``tsfleet serve`` its analysis thread keeps to one, so that the writer keeps a core,
    while a command run alone uses one per core."""
    import os

    from tsfleet.environment.api import Environment

    seen: list[int] = []
    monkeypatch.setattr(Environment, "_analyze",
                        lambda self, params, map_fn=map, threads=1: seen.append(threads))
    db = str(tmp_path / "serve.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-env-threads",
                        batch_delay_s=0.2, analyze_every={"environment": 0.3})
    pub = Publisher(broker.port)
    for i in range(8):
        pub.publish(f"fleet/e-{i % 4}/senml", senml_json(pack(f"e-{i % 4}", i)))
    srv.sync()
    wait_for(lambda: len(seen) >= 1)
    srv.stop()
    pub.close()
    assert set(seen) == {1}
    with Fleet(db) as f:
        f.environment.analyze()
        f.environment.analyze(threads=3)
    assert seen[-2:] == [len(os.sched_getaffinity(0)), 3]
