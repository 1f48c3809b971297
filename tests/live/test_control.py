"""Issue 23: while ``tsfleet serve`` holds the store, every command reaches it through
serve's control interface and prints what it prints without serve; scheduled snapshots
taken during ingest are whole.

The CLI tests run serve and the commands as separate processes (DuckDB's file lock is
per process), over a real mosquitto; the interface's own tests run serve in a thread.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from tests.live.control_support import ENV, ServeProcess, tsfleet
from tests.live.live_support import T0, Publisher, RunningServer, decoder, senml_json
from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.errors import TsfleetError
from tsfleet.live.broker import free_port
from tsfleet.live.writer import Envelope, Writer
from tsfleet.remote import (
    ServedFleet,
    advert_path,
    find_server,
    forward,
    request,
    run_remote,
    token_path,
)
from tsfleet.share import take_snapshot

pytestmark = pytest.mark.network

#: The commands compared with and without serve (reads, and workorders, which writes).
READS = (("sql", "select count(*) from readings"), ("device", "px-00012"),
         ("alerts", "list"), ("workorders", "--no-plan"),
         ("sql", "select device_id, metric, count(*) as n from readings "
                 "group by all order by all limit 20"))


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    """A demo store (12 devices, 4 days, every analysis run): alerts and a plan exist."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    assert main(["demo", "--devices", "12", "--days", "4", "--db", str(path)]) == 0
    return path


@pytest.fixture
def store(demo_store, tmp_path) -> str:
    path = tmp_path / "plant.duckdb"
    shutil.copy(demo_store, path)
    return str(path)


def _pack(device: str, t: float, n: int = 10) -> bytes:
    """``n`` readings of ``device`` and one text field (stored in ``unmapped``)."""
    pack = [{"bn": f"{device}:", "bt": t, "n": "temp", "u": "Cel", "v": 20.0}]
    pack += [{"n": "temp", "u": "Cel", "v": 20.0 + k, "t": k} for k in range(1, n)]
    pack.append({"n": "status", "vs": "ok"})
    return senml_json(pack)


def _wait_count(store: str, sql: str, want: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = tsfleet("--db", store, "sql", sql, "--format", "csv")
        assert r.returncode == 0, r.stderr
        if r.stdout.split()[-1] == str(want):
            return
        assert time.monotonic() < deadline, f"{sql}: {r.stdout.split()[-1]} of {want}"
        time.sleep(0.3)


def test_commands_while_serve_runs_print_what_they_print_without_it(broker, store, tmp_path):
    serve = ServeProcess(store, broker.port)
    try:
        advert = serve.wait_ready()
        assert advert["host"] == "127.0.0.1" and advert["pid"] == serve.proc.pid
        assert token_path(store).stat().st_mode & 0o777 == 0o600
        pub = Publisher(broker.port, client_id="t-control-pub")
        for i in range(5):  # live ingest goes on into the same store
            pub.publish(f"fleet/m-{i}/senml", _pack(f"m-{i}", T0 + i))
        pub.close()
        _wait_count(store, "select count(*) from readings where device_id like 'm-%'", 50)
        during = {cmd: tsfleet("--db", store, *cmd) for cmd in READS}
        for cmd, r in during.items():
            assert r.returncode == 0 and r.stderr == "", (cmd, r.stderr)
        # a file ingest goes through serve's writer: lands once, quarantine reported
        (tmp_path / "in.csv").write_text("device_id,observed_at,metric,value\n"
                                         "q-1,2026-03-01T10:00Z,battery_pct,50\n"
                                         "q-1,2026-03-01T11:00Z,battery_pct,abc\n")
        first = tsfleet("--db", store, "ingest", "readings", "in.csv", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout == ("readings from in.csv: 2 rows, 1 accepted, 0 duplicates, "
                                "1 quarantined (bad_number: 1)\n")
        again = tsfleet("--db", store, "ingest", "readings", "in.csv", cwd=tmp_path)
        assert "0 accepted, 1 duplicate, 1 quarantined" in again.stdout
        counted = tsfleet("--db", store, "sql", "select count(*) as n from readings where "
                          "device_id = 'q-1'", "--format", "csv")
        assert counted.stdout.split() == ["n", "1"]
        # a write through sql is refused as on a read-only store, in one line
        refused = tsfleet("--db", store, "sql", "delete from readings")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1
        assert "DELETE" in refused.stderr
        assert tsfleet("--db", store, "serve", "--mqtt", "127.0.0.1:1").returncode == 2
        # retention runs inside serve too, its quarantine part included (recent: kept)
        kept = tsfleet("--db", store, "retention", "--quarantine-days", "30")
        assert kept.returncode == 0 and kept.stderr == "", kept.stderr
        assert kept.stdout.splitlines()[-1].endswith(
            " UTC: 0 quarantined rows and 0 unmapped fields deleted")
        assert serve.terminate() == 0
    finally:
        serve.kill()
    assert not advert_path(store).exists() and not token_path(store).exists()
    # the same commands on the stopped store: the same output (less the file's row)
    r = tsfleet("--db", store, "sql", "delete from readings where device_id = 'q-1'")
    assert r.returncode == 2  # sql is read-only without serve too
    with Fleet(store) as f:
        f.query("delete from readings where device_id = 'q-1'")
    after = {cmd: tsfleet("--db", store, *cmd) for cmd in READS}
    for cmd in READS:
        assert during[cmd].stdout == after[cmd].stdout, cmd
        assert during[cmd].returncode == after[cmd].returncode == 0


def test_snapshots_taken_during_ingest_hold_each_batch_whole(broker, store, tmp_path):
    snap = tmp_path / "share" / "snap.duckdb"
    serve = ServeProcess(store, broker.port, "--snapshot-every", "0.3s",
                         "--snapshot-path", str(snap), "--batch-rows", "400")
    n_msgs, seen, problems = 600, {}, []
    try:
        serve.wait_ready()
        pub = Publisher(broker.port, client_id="t-control-snap")
        done = threading.Event()

        def publish() -> None:
            for i in range(n_msgs):
                pub.publish(f"fleet/s-{i}/senml", _pack(f"s-{i}", T0 + i))
                time.sleep(0.01)  # a stream over several seconds
            done.set()

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        deadline = time.monotonic() + 120
        while (not done.is_set() or len(seen) < 4) and time.monotonic() < deadline:
            if snap.exists():
                _check_snapshot(snap, seen, problems)
            time.sleep(0.05)
        t.join(60)
        pub.close()
        assert serve.terminate() == 0
    finally:
        serve.kill()
    assert problems == []
    # snapshots were taken in the middle of the stream, not only before or after it
    assert sum(0 < n < n_msgs for n in seen.values()) >= 2, seen


def _check_snapshot(snap: Path, seen: dict, problems: list) -> None:
    """Open the snapshot read-only; each message: 10 readings and its text field, or none."""
    try:
        con = duckdb.connect(str(snap), read_only=True)
    except duckdb.Error as exc:  # pragma: no cover - a half file would fail here
        problems.append(f"cannot open: {exc}")
        return
    with con:
        taken = con.execute("select taken_at from snapshot_info").fetchone()[0]
        per = dict(con.execute("select device_id, count(*) from readings where device_id "
                               "like 's-%' group by all").fetchall())
        texts = {r[0] for r in con.execute("select device_id from unmapped where "
                                           "device_id like 's-%'").fetchall()}
    if any(n != 10 for n in per.values()):
        problems.append(f"{taken}: a message cut: {[d for d, n in per.items() if n != 10]}")
    if set(per) != texts:
        problems.append(f"{taken}: readings and text fields of different batches: "
                        f"{sorted(set(per) ^ texts)[:5]}")
    seen[taken] = len(per)


def test_a_pinned_snapshot_never_splits_a_writer_batch(tmp_path, monkeypatch):
    """A writer batch is one transaction (readings, then text fields, ...). The gap
    between its tables is widened here to 0.2 s: neither a copy started between batches
    (``pin=Writer.call``, what serve does) nor one started anywhere splits a batch
    (before the batch was one transaction, unpinned copies split them here)."""
    fleet = Fleet(str(tmp_path / "w.duckdb"))
    dec = decoder()
    store_unmapped = Writer._store_unmapped

    def widened(self, batch):
        time.sleep(0.2)  # this batch's readings are committed, its text fields not yet
        return store_unmapped(self, batch)

    monkeypatch.setattr(Writer, "_store_unmapped", widened)
    writer = Writer(fleet, max_delay=0.05)
    writer.start()
    done = threading.Event()

    def feed() -> None:
        for i in range(400):
            if done.is_set():
                return
            env = Envelope("mqtt", f"fleet/s-{i}/senml", _pack(f"s-{i}", T0 + i), time.time())
            dec.decode_into(env, fmt="senml", topic_device=f"s-{i}")
            writer.submit(env)
            time.sleep(0.03)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        pinned, unpinned = ({}, []), ({}, [])
        for k in range(8):
            take_snapshot(fleet.con, tmp_path / f"p{k}.duckdb", pin=writer.call)
            _check_snapshot(tmp_path / f"p{k}.duckdb", *pinned)
            take_snapshot(fleet.con, tmp_path / f"u{k}.duckdb")
            _check_snapshot(tmp_path / f"u{k}.duckdb", *unpinned)
    finally:
        done.set()
        t.join(30)
        writer.stop()
        fleet.close()
    assert pinned[1] == [] and len(pinned[0]) == 8
    assert sum(0 < n for n in pinned[0].values()) >= 6
    assert unpinned[1] == [] and sum(0 < n for n in unpinned[0].values()) >= 6


# -- the interface itself (serve in a thread of this process) -------------------------------
@pytest.fixture
def running(store):
    srv = RunningServer(store, run_command=main)
    yield srv
    if srv.thread.is_alive():
        srv.stop()


def _post(advert: dict, path: str, body: bytes, token: str | None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", advert["port"], timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    status, data = resp.status, json.loads(resp.read() or b"{}")
    conn.close()
    return status, data


def test_a_request_without_the_token_gets_401(running, store):
    advert = find_server(store)
    assert advert is not None and advert["port"] == running.server.control.port
    body = json.dumps({"argv": ["info"]}).encode()
    assert _post(advert, "/cli", body, None)[0] == 401
    assert _post(advert, "/cli", body, "not-the-token")[0] == 401
    token = Path(advert["token_file"]).read_text().strip()
    status, answer = _post(advert, "/cli", body, token)
    assert status == 200 and answer["rc"] == 0 and "schema version" in answer["stdout"]
    assert _post(advert, "/cli", b"[1, 2]", token)[0] == 400
    assert _post(advert, "/cli", json.dumps({"argv": "info"}).encode(), token)[0] == 400
    assert _post(advert, "/nowhere", body, token)[0] == 404
    status, answer = _post(advert, "/cli", json.dumps({"argv": ["demo"]}).encode(), token)
    assert answer["rc"] == 2 and "cannot run while tsfleet serve" in answer["stderr"]


def test_fleet_connect_queries_and_ingests_through_serve(running, store, tmp_path):
    fleet = Fleet.connect(store)
    assert isinstance(fleet, ServedFleet)
    before = fleet.query("select count(*) as n from readings")[0]["n"]
    (tmp_path / "r.csv").write_text("device_id,observed_at,metric,value\n"
                                    "c-1,2026-03-01T10:00Z,battery_pct,50\n")
    assert "1 accepted" in fleet.ingest("readings", tmp_path / "r.csv")
    assert fleet.query("select count(*) as n from readings")[0]["n"] == before + 1
    rows = fleet.query("select device_id, observed_at from readings where device_id = ?",
                       ["c-1"])
    assert rows == [{"device_id": "c-1", "observed_at": datetime(2026, 3, 1, 10, 0)}]
    with pytest.raises(TsfleetError, match="INSERT statement"):
        fleet.query("insert into readings select * from readings")
    with pytest.raises(TsfleetError, match="SQL error"):
        fleet.query("select * from no_such_table")
    assert fleet.cli("--help")["rc"] == 0
    running.stop()
    assert find_server(store) is None  # the advert is withdrawn at a clean stop
    with Fleet.connect(store) as direct:  # nobody holds the store: a Fleet of its own
        assert isinstance(direct, Fleet)
        assert direct.query("select count(*) as n from readings")[0]["n"] == before + 1


def test_a_stale_advert_is_ignored(store, tmp_path):
    advert_path(store).write_text(json.dumps({"pid": 2**22 + 12345, "port": 1, "store": store,
                                              "token_file": str(tmp_path / "t")}))
    assert find_server(store) is None
    assert main(["--db", store, "sql", "select 1 as x", "--format", "csv"]) == 0


def test_the_client_forwards_and_fails_in_one_line(running, store, tmp_path, capsys):
    advert = find_server(store)
    assert forward(advert, ["--db", store, "sql", "select 41 + 1 as x", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "x\n42\n"
    assert forward(advert, ["device", "no-such-device"]) == 2
    assert capsys.readouterr().err == ("tsfleet: error: device 'no-such-device' is neither "
                                       "registered nor seen in readings\n")
    with pytest.raises(TsfleetError, match="unknown ingest kind"):
        ServedFleet(store, advert).ingest("nonsense", tmp_path / "x.csv")
    (tmp_path / "wrong").write_text("not-the-token\n")
    with pytest.raises(TsfleetError, match="HTTP 401"):
        request({**advert, "token_file": str(tmp_path / "wrong")}, "/cli", {"argv": []})
    with pytest.raises(TsfleetError, match="token cannot be read"):
        request({**advert, "token_file": str(tmp_path / "missing")}, "/cli", {"argv": []})
    with pytest.raises(TsfleetError, match="did not answer"):
        request({**advert, "port": free_port()}, "/cli", {"argv": []})
    assert repr(ServedFleet(store, advert)).startswith("ServedFleet(")
    # tsfleet snapshot through serve: a read, its copy started between two batches
    assert forward(advert, ["snapshot", str(tmp_path / "s.duckdb")]) == 0
    assert "snapshot " in capsys.readouterr().out
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from readings").fetchone()[0] > 0


def test_sigkill_of_serve_during_a_forwarded_ingest_loses_nothing_after_a_rerun(
        broker, store, tmp_path):
    files = tmp_path / "batch"
    files.mkdir()
    n_files, per = 40, 2000
    for k in range(n_files):
        rows = "".join(f"k-{k},2026-03-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}Z,"
                       f"battery_pct,{50 + i % 7}\n" for i in range(per))
        (files / f"f{k:02d}.csv").write_text("device_id,observed_at,metric,value\n" + rows)
    serve = ServeProcess(store, broker.port)
    try:
        serve.wait_ready()
        ingest = subprocess.Popen([sys.executable, "-m", "tsfleet", "--db", store, "ingest",
                                   "readings", str(files)], env=ENV, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        advert, deadline = find_server(store), time.monotonic() + 60
        while "k-" not in run_remote(advert, ["sql", "select device_id from readings where "
                                              "device_id like 'k-%' limit 1"])["stdout"]:
            assert ingest.poll() is None and time.monotonic() < deadline, ingest.stderr
            time.sleep(0.02)
        serve.proc.kill()
        serve.proc.wait(30)
        out, err = ingest.communicate(timeout=60)
        assert ingest.returncode == 2 and err.count("\n") == 1, err
        assert "did not answer" in err
    finally:
        serve.kill()
    landed = _count(store, "k-%")
    assert 0 < landed < n_files * per  # killed in the middle
    again = ServeProcess(store, broker.port)
    try:
        again.wait_ready()
        rerun = tsfleet("--db", store, "ingest", "readings", str(files))
        assert rerun.returncode == 0, rerun.stderr
        assert f"{n_files * per - landed:,} accepted, {landed:,} duplicates" in rerun.stdout
        assert again.terminate() == 0
    finally:
        again.kill()
    assert _count(store, "k-%") == n_files * per


def _count(store: str, like: str) -> int:
    with duckdb.connect(store, read_only=True) as con:
        return con.execute("select count(*) from readings where device_id like ?",
                           [like]).fetchone()[0]


def test_a_library_server_without_the_command_line_serves_queries(store):
    srv = RunningServer(store)  # ServeConfig without run_command
    try:
        fleet = Fleet.connect(store)
        assert fleet.query("select 1 as x") == [{"x": 1}]
        answer = fleet.cli("info")
        assert answer["rc"] == 2 and "only /query is served" in answer["stderr"]
    finally:
        srv.stop()


def test_a_command_that_breaks_inside_serve_fails_in_one_line(store):
    def broken(argv, cwd=None):
        print("partial output")
        raise ValueError("a bug\nwith a second line")

    srv = RunningServer(store, run_command=broken)
    try:
        answer = Fleet.connect(store).cli("info")
        assert answer["rc"] == 1 and answer["stdout"] == "partial output\n"
        assert answer["stderr"] == ("tsfleet: error: internal error in tsfleet serve: "
                                    "ValueError: a bug (traceback in serve's log)\n")
        assert srv.server.writer.error is None  # serve goes on
    finally:
        srv.stop()
