"""Analyses off the ingest path (issue 23): ``tsfleet serve`` commits readings while an
analysis runs, an analysis that meets a write conflict is run again, and ingest loses
and quarantines nothing (real mosquitto on 127.0.0.1, serve in a thread).

The analysis under test is the power domain's, replaced by a function that holds the
analysis open until the test lets it go: what is asserted is the order of commits and
analysis runs as the store records them, not how fast anything is."""

from __future__ import annotations

import threading
import time

import pytest

from tests.live.live_support import T0, Publisher, RunningServer, senml_json
from tsfleet import Fleet
from tsfleet.power import Power

pytestmark = pytest.mark.network

#: The longest a held analysis waits for the test (a safety bound, never reached).
HOLD_S = 90.0


def pack(device: str, i: int, n: int = 10) -> list[dict]:
    return [{"bn": f"{device}:", "bt": T0 + i * 600, "n": "battery", "u": "%EL", "v": 90.0}] + [
        {"n": "battery", "u": "%EL", "v": 90.0 - k * 0.01, "t": k * 60} for k in range(1, n)]


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def publish(pub: Publisher, start: int, n: int) -> None:
    for i in range(start, start + n):
        pub.publish(f"fleet/op-{i % 4}/senml", senml_json(pack(f"op-{i % 4}", i)))


class HeldAnalysis:
    """Power's analysis replaced: it records its window and waits for :meth:`release`."""

    def __init__(self):
        self.inside, self.released = threading.Event(), threading.Event()
        self.windows: list[tuple[float, float]] = []

    def __call__(self, domain, devices=None):
        t0 = time.time()
        self.inside.set()
        self.released.wait(HOLD_S)
        self.windows.append((t0, time.time()))

    def release(self) -> None:
        self.released.set()


def batches(db: str | None = None, server=None) -> list[dict]:
    """The readings batches and when they were stored, from the stopped store (or from a
    cursor of a running ``server``, which holds the file)."""
    sql = ("select batch_id, epoch(finished_at) as at from ingest_batches "
           "where kind = 'readings' order by batch_id")
    if server is not None:
        cur = server.fleet.con.cursor()
        try:
            return [{"batch_id": b, "at": a} for b, a in cur.execute(sql).fetchall()]
        finally:
            cur.close()
    with Fleet(db, read_only=True) as f:
        return f.query(sql)


def test_readings_commit_while_an_analysis_runs_and_the_run_claims_only_what_it_saw(
        broker, tmp_path, monkeypatch):
    held = HeldAnalysis()
    monkeypatch.setattr(Power, "analyze", lambda self, devices=None: held(self, devices))
    db = str(tmp_path / "offpath.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-offpath",
                        batch_delay_s=0.1, analyze_every={"power": 3600.0})
    assert held.inside.wait(30), "the power analysis did not start"
    worker = srv.server.analysis
    assert worker is not None and worker.running == "power"
    pub = Publisher(broker.port)
    publish(pub, 0, 20)
    # the analysis is still held: the readings must be committed all the same
    wait_for(lambda: srv.server.writer.stats.n_accepted == 200, what="commits during the run")
    assert not held.released.is_set() and worker.running == "power"
    committed_during = batches(server=srv.server)
    # SIGTERM-like stop while the analysis runs: it finishes, then the store closes
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    wait_for(lambda: srv.server._closing, what="the shutdown to begin")
    assert worker.alive  # waiting for the running analysis, not abandoning it
    held.release()
    stopper.join(60)
    assert not stopper.is_alive()
    pub.close()

    (t0, t1), = held.windows
    assert committed_during and all(t0 < b["at"] < t1 for b in committed_during)
    with Fleet(db, read_only=True) as f:
        assert f.query("select count(*) as n from readings")[0]["n"] == 200
        assert f.query("select count(*) as n from quarantine")[0]["n"] == 0
        run, = f.query("select status, to_batch_id, epoch(started_at) as s, "
                       "epoch(finished_at) as e from analysis_runs where analysis = 'power'")
        # recorded once, finished, and it covers only the batches that existed at its start
        assert run["status"] == "ok" and run["s"] <= t0 and run["e"] >= t1
        assert run["to_batch_id"] < min(b["batch_id"] for b in committed_during)
        fresh = f.query("select * from freshness where analysis = 'power'")[0]
        assert fresh["pending_batches"] == len(committed_during)


def test_on_the_writer_thread_the_same_readings_wait_for_the_analysis(
        broker, tmp_path, monkeypatch):
    """The baseline (``--analyses-on-writer``): what the test above rules out happens."""
    held = HeldAnalysis()
    monkeypatch.setattr(Power, "analyze", lambda self, devices=None: held(self, devices))
    db = str(tmp_path / "onwriter.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-onwriter",
                        batch_delay_s=0.1, analyze_every={"power": 3600.0},
                        analyses_on_writer=True)
    assert held.inside.wait(30), "the power analysis did not start"
    assert srv.server.analysis is None
    pub = Publisher(broker.port)
    publish(pub, 0, 20)  # acknowledged by the broker, not yet by serve
    assert srv.server.writer.stats.n_accepted == 0
    held.release()
    srv.sync()
    wait_for(lambda: srv.server.writer.stats.n_accepted == 200, what="the commits")
    srv.stop()
    pub.close()
    (_, t1), = held.windows
    assert all(b["at"] >= t1 for b in batches(db))


def test_an_analysis_that_meets_a_write_conflict_is_run_again_and_ingest_loses_nothing(
        broker, tmp_path, monkeypatch):
    db = str(tmp_path / "conflict.duckdb")
    with Fleet(db) as f:  # a row the analysis writes, which a write on the writer changes too
        f.con.execute("create table offpath_probe (k integer primary key, v integer)")
        f.con.execute("insert into offpath_probe values (1, 0)")
    go, attempts, srv_box = threading.Event(), [], []

    def analyze(domain, devices=None):
        assert go.wait(HOLD_S)
        con = domain.con  # the analysis thread's own cursor
        attempts.append(threading.current_thread().name)
        con.execute("begin transaction")
        con.execute("select v from offpath_probe").fetchall()  # its view starts here
        if len(attempts) == 1:
            server = srv_box[0]
            # meanwhile readings are committed and a command run on the writer (as the
            # control interface runs one) changes the row this analysis is about to write
            publish(pub, 0, 20)
            wait_for(lambda: server.writer.stats.n_accepted == 200, what="commits")
            server.writer.call(lambda: server.fleet.con.execute(
                "update offpath_probe set v = v + 100 where k = 1").fetchall())
        con.execute("update offpath_probe set v = v + 1 where k = 1")  # conflicts once
        con.execute("commit")

    monkeypatch.setattr(Power, "analyze", analyze)
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-conflict",
                        batch_delay_s=0.1, analyze_every={"power": 3600.0})
    srv_box.append(srv.server)
    pub = Publisher(broker.port)
    go.set()
    worker = srv.server.analysis
    wait_for(lambda: len(attempts) == 2 and worker.running is None, what="the second attempt")
    publish(pub, 20, 20)  # and after it
    wait_for(lambda: srv.server.writer.stats.n_accepted == 400, what="the last commits")
    srv.stop()
    pub.close()

    assert attempts == ["tsfleet-analysis"] * 2
    assert worker.n_conflicts == 1
    assert srv.server.writer.stats.n_conflicts == 0  # ingest never gave way
    with Fleet(db, read_only=True) as f:
        assert f.query("select v from offpath_probe")[0]["v"] == 101  # both writes, once each
        assert f.query("select count(*) as n from readings")[0]["n"] == 400
        assert f.query("select count(*) as n from quarantine")[0]["n"] == 0
        runs = f.query("select status, error from analysis_runs where analysis = 'power'")
        assert runs == [{"status": "ok", "error": None}]  # the retried run recorded once


def test_a_write_through_the_control_interface_waits_for_a_running_analysis(
        broker, tmp_path, monkeypatch):
    """Forwarded writes keep working; they never run beside an analysis (the lock)."""
    from tsfleet.cli import main
    from tsfleet.remote import find_server, run_remote

    held = HeldAnalysis()
    monkeypatch.setattr(Power, "analyze", lambda self, devices=None: held(self, devices))
    db = str(tmp_path / "forward.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-forward",
                        batch_delay_s=0.1, analyze_every={"power": 3600.0}, run_command=main)
    assert held.inside.wait(30)
    advert = find_server(db)
    (tmp_path / "dev.csv").write_text("device_id,device_type,manufacturer,model,site,zone\n"
                                      "fw-1,th-sensor,Acme,TH-200,plant-1,hall\n")
    answer: list[dict] = []
    writer = threading.Thread(target=lambda: answer.append(run_remote(
        advert, ["--db", db, "ingest", "devices", str(tmp_path / "dev.csv")])))
    reader = run_remote(advert, ["--db", db, "sql", "select count(*) as n from devices"])
    assert reader["rc"] == 0, reader  # a read does not wait
    writer.start()
    pub = Publisher(broker.port)
    publish(pub, 0, 8)  # ingest goes on while the write waits for the analysis
    wait_for(lambda: srv.server.writer.stats.n_accepted == 80, what="commits")
    assert not answer and held.windows == []
    held.release()
    writer.join(60)
    srv.stop()
    pub.close()
    assert answer and answer[0]["rc"] == 0 and "1 accepted" in answer[0]["stdout"], answer
    with Fleet(db, read_only=True) as f:
        ended = held.windows[0][1]
        row = f.query("select epoch(b.finished_at) as at from devices d join ingest_batches b "
                      "using (batch_id) where d.device_id = 'fw-1'")
        assert row and row[0]["at"] >= ended
        assert f.query("select count(*) as n from readings")[0]["n"] == 80
