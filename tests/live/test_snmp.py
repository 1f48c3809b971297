"""SNMP polling against a real net-snmp ``snmpd`` on 127.0.0.1 (v2c and v3 authPriv),
and an agent that does not answer: gateway_stats rows, down when silent."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.live.live_support import RunningServer
from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.live.snmp import Poller, counter_delta

pytest.importorskip("pysnmp", reason="pip install pysnmp (tsfleet[snmp])")
SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if os.path.exists("/usr/sbin/snmpd")
                                  else None)
pytestmark = [pytest.mark.network,
              pytest.mark.skipif(SNMPD is None, reason="snmpd is not installed "
                                 "(apt-get install snmpd)")]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _udp_bound(port: int) -> bool:
    """Whether a socket is bound to UDP ``port`` on 127.0.0.1 (read from /proc, which
    does not disturb the agent; without /proc, after one second, as before)."""
    try:
        table = open("/proc/net/udp").read().splitlines()[1:]
    except OSError:
        time.sleep(1.0)
        return True
    return any(line.split()[1] == f"0100007F:{port:04X}" for line in table)


@pytest.fixture
def snmpd(tmp_path):
    port = free_udp_port()
    conf = tmp_path / "snmpd.conf"
    conf.write_text(f"agentAddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"
                    'createUser tsfleet SHA "auth-secret-1" AES "priv-secret-1"\n'
                    "rouser tsfleet priv\n")
    proc = subprocess.Popen([SNMPD, "-f", "-Lo", "-C", "-c", str(conf), f"-p{tmp_path}/pid",
                             f"--persistentDir={tmp_path}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _udp_bound(port):  # snmpd binds its port once its config (users too) is read
        assert proc.poll() is None and time.monotonic() < deadline, "snmpd did not start"
        time.sleep(0.05)
    assert proc.poll() is None, "snmpd did not start"
    yield port
    proc.terminate()
    proc.wait(10)


def test_snmp_poll_v2c_v3_and_a_silent_agent(snmpd, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GW_AUTH", "auth-secret-1")
    monkeypatch.setenv("GW_PRIV", "priv-secret-1")
    dead = free_udp_port()
    targets = tmp_path / "agents.toml"
    targets.write_text(
        f'[[agent]]\ngateway_id = "gw-v2c"\naddress = "127.0.0.1:{snmpd}"\n'
        'community = "public"\n\n'
        f'[[agent]]\ngateway_id = "gw-v3"\naddress = "127.0.0.1:{snmpd}"\nuser = "tsfleet"\n'
        'auth_key_env = "GW_AUTH"\npriv_key_env = "GW_PRIV"\n\n'
        f'[[agent]]\ngateway_id = "gw-wrong-community"\naddress = "127.0.0.1:{snmpd}"\n'
        'community = "not-public"\n\n'
        f'[[agent]]\ngateway_id = "gw-silent"\naddress = "127.0.0.1:{dead}"\n'
        'community = "public"\n')
    db = str(tmp_path / "snmp.duckdb")
    assert main(["snmp-poll", "--db", db, "--targets", str(targets), "--timeout", "0.5",
                 "--retries", "0"]) == 0
    assert "polled 4 agents: 2 up, 2 down (gw-silent, gw-wrong-community)" in \
        capsys.readouterr().out
    with Fleet(db, read_only=True) as f:
        rows = {r["gateway_id"]: r for r in f.query("select * from gateway_stats")}
    assert {g for g, r in rows.items() if r["is_up"]} == {"gw-v2c", "gw-v3"}
    with open("/proc/meminfo") as fh:
        mem = {line.split(":")[0]: int(line.split()[1]) for line in fh}
    for g in ("gw-v2c", "gw-v3"):
        assert 0 < rows[g]["latency_ms"] < 500
        # net-snmp's RAM entry: used = total - free - buffers - cached, of MemTotal
        assert 0 < rows[g]["memory_pct"] < 100
        assert rows[g]["memory_pct"] >= 100 * (1 - (mem["MemFree"] + mem.get("Buffers", 0) +
                                                    mem.get("Cached", 0)) / mem["MemTotal"]) - 15
    assert rows["gw-silent"]["latency_ms"] is None


def test_snmp_targets_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "t.toml"
    bad.write_text('[[agent]]\ngateway_id = "gw"\naddress = "127.0.0.1:1"\n')
    assert main(["snmp-poll", "--db", str(tmp_path / "x.duckdb"), "--targets", str(bad)]) == 2
    assert "needs either community (v2c) or user (v3)" in capsys.readouterr().err


def _proc_net_dev() -> dict[str, tuple[int, int]]:
    """Interface -> (received bytes, sent bytes), as the kernel counts them."""
    with open("/proc/net/dev") as fh:
        lines = fh.read().splitlines()[2:]
    return {name.strip(): (int(v.split()[0]), int(v.split()[8]))
            for name, v in (line.split(":", 1) for line in lines)}


def test_counters_deltas_clients_v3_keys_from_a_file_and_an_agent_that_stops(
        snmpd, tmp_path, monkeypatch, capsys):
    """Two polls: the second has interface counter deltas (the stored raw counters
    match the kernel's), UCD CPU from tick deltas, associated clients counted and
    summed; then snmpd stops and the same gateway is down."""
    monkeypatch.setenv("GW_PRIV", "priv-secret-1")
    (tmp_path / "auth.key").write_text("auth-secret-1\n")
    n_if = len(os.listdir("/sys/class/net"))
    targets = tmp_path / "agents.toml"
    targets.write_text(
        f'[[agent]]\ngateway_id = "gw-count"\naddress = "127.0.0.1:{snmpd}"\n'
        'community = "public"\nclients_oid = "1.3.6.1.2.1.2.2.1.1"\n\n'
        f'[[agent]]\ngateway_id = "gw-v3-sum"\naddress = "127.0.0.1:{snmpd}"\n'
        'user = "tsfleet"\nauth_key_file = "auth.key"\npriv_key_env = "GW_PRIV"\n'
        'clients_oid = "1.3.6.1.2.1.2.1"\nclients = "sum"\n')
    db = str(tmp_path / "snmp.duckdb")
    args = ["snmp-poll", "--db", db, "--targets", str(targets), "--timeout", "1",
            "--retries", "0"]
    before = _proc_net_dev()
    assert main(args) == 0
    after = _proc_net_dev()
    assert "2 up, 0 down" in capsys.readouterr().out
    with Fleet(db, read_only=True) as f:
        raw = f.query("select counter, value::double as v from snmp_counters "
                      "where gateway_id = 'gw-count' and counter like 'if.%.in_octets'")
        names = f.query("select gateway_id, n_connected, uptime_s, n_in_octets, cpu_pct "
                        "from gateway_stats order by gateway_id")
    real = [k for k in before if k != "lo"]
    assert len(raw) == len(real)  # every interface but the loopback
    assert sum(before[k][0] for k in real) <= sum(r["v"] for r in raw) <= \
        sum(after[k][0] for k in real)
    assert [(r["gateway_id"], r["n_connected"]) for r in names] == \
        [("gw-count", n_if), ("gw-v3-sum", n_if)]
    assert all(r["uptime_s"] > 0 and r["n_in_octets"] is None for r in names)  # first poll
    time.sleep(1.5)
    assert main(args) == 0
    with Fleet(db, read_only=True) as f:
        second = f.query("select * from gateway_stats where n_in_octets is not null")
    assert {r["gateway_id"] for r in second} == {"gw-count", "gw-v3-sum"}
    for r in second:
        assert r["n_in_octets"] >= 0 and r["n_out_errors"] >= 0
        assert r["cpu_pct"] is None or 0 <= r["cpu_pct"] <= 100
    capsys.readouterr()
    os.kill(int((tmp_path / "pid").read_text()), 15)  # the agent stops answering
    time.sleep(0.5)
    assert main(args) == 0
    assert "0 up, 2 down (gw-count, gw-v3-sum)" in capsys.readouterr().out


def test_counter_deltas_wrap_and_restart():
    """Known counter sequences: a 32-bit wrap, a 64-bit one, an agent restart."""
    p = Poller([])
    first = {"if.2.in_octets": (2**32 - 100, 32), "if.2.out_octets": (2**64 - 1, 64),
             "if.2.in_errors": (5, 32), "if.2.out_errors": (0, 32),
             "cpu.busy": (100, 32), "cpu.total": (1000, 32)}
    row = {"gateway_id": "g"}
    p._deltas(row, first, 1000, 0.0)
    assert row["n_in_octets"] is None and "cpu_pct" not in row
    row = {"gateway_id": "g"}
    p._deltas(row, {**first, "if.2.in_octets": (50, 32), "if.2.out_octets": (9, 64),
                    "cpu.busy": (130, 32), "cpu.total": (1100, 32)}, 2000, 60.0)
    assert (row["n_in_octets"], row["n_out_octets"], row["n_in_errors"]) == (150, 10, 0)
    assert row["cpu_pct"] == pytest.approx(30.0)
    row = {"gateway_id": "g"}
    p._deltas(row, {**first, "if.2.in_octets": (7, 32)}, 10, 120.0)  # restarted
    assert row["n_in_octets"] is None and row["n_in_errors"] is None
    assert counter_delta(10, 9, 32) == 2**32 - 1


def test_v3_key_file_and_env_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    cases = {'auth_key_env = "NO_SUCH_VAR"': "NO_SUCH_VAR is not set",
             'auth_key_file = "missing.key"': "cannot read auth_key_file",
             'auth_key_file = "empty.key"': "is empty",
             'auth_key_file = "empty.key"\nauth_key_env = "X"': "not both"}
    (tmp_path / "empty.key").write_text("\n")
    for line, message in cases.items():
        bad = tmp_path / "t.toml"
        bad.write_text(f'[[agent]]\ngateway_id = "gw"\naddress = "127.0.0.1:1"\n'
                       f'user = "u"\n{line}\n')
        assert main(["snmp-poll", "--db", str(tmp_path / "x.duckdb"), "--targets",
                     str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def _up_and_silent(tmp_path, port: int):
    """A targets file of two v2c agents: gw-up (the snmpd on ``port``) and gw-silent (a
    port nobody answers on)."""
    dead = free_udp_port()
    targets = tmp_path / "agents.toml"
    targets.write_text(
        f'[[agent]]\ngateway_id = "gw-up"\naddress = "127.0.0.1:{port}"\n'
        'community = "public"\n\n'
        f'[[agent]]\ngateway_id = "gw-silent"\naddress = "127.0.0.1:{dead}"\n'
        'community = "public"\n')
    return targets


def test_serve_polls_the_targets_on_its_cadence_and_keeps_the_counters(snmpd, tmp_path):
    """``serve --snmp-targets`` polls every interval (here 1 s): an answering agent gets
    counter deltas from its second poll on, a silent one is down every time, and the raw
    counters are kept in the store at shutdown for the next start."""
    targets = _up_and_silent(tmp_path, snmpd)
    db = str(tmp_path / "serve.duckdb")
    srv = RunningServer(db, snmp_targets=str(targets), snmp_every_s=1.0, snmp_concurrency=1)
    time.sleep(3.6)
    srv.stop()
    with Fleet(db, read_only=True) as f:
        rows = f.query("select gateway_id, is_up, n_in_octets from gateway_stats "
                       "order by observed_at")
        kept = f.query("select count(*) as n from snmp_counters where gateway_id = 'gw-up'")
    up = [r for r in rows if r["gateway_id"] == "gw-up"]
    silent = [r for r in rows if r["gateway_id"] == "gw-silent"]
    assert 3 <= len(up) <= 5 and len(silent) == len(up)
    assert all(r["is_up"] for r in up) and not any(r["is_up"] for r in silent)
    assert up[0]["n_in_octets"] is None and all(r["n_in_octets"] is not None for r in up[1:])
    assert kept[0]["n"] > 0


def test_serve_snmp_options_are_checked_before_serving(tmp_path, capsys):
    targets = tmp_path / "agents.toml"
    targets.write_text('[[agent]]\ngateway_id = "gw"\naddress = "127.0.0.1:1"\n'
                       'community = "public"\n')
    db = str(tmp_path / "x.duckdb")
    assert main(["serve", "--db", db, "--snmp-targets", str(targets), "--snmp-every",
                 "soon"]) == 2
    assert "duration like 30s" in capsys.readouterr().err
    assert main(["serve", "--db", db, "--snmp-targets", str(tmp_path / "none.toml")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_snmp_poll_while_serve_holds_the_store(snmpd, tmp_path):
    """``tsfleet snmp-poll`` while serve holds the store: it polls from its own process
    and serve's writer stores the rows and the raw counters (the second poll gets deltas
    from the first); its hand-over file is removed; results that another poll overtook
    (the counters changed since this one read them) are refused in one line and nothing
    is stored. Beside a serve that polls on its own schedule, it is refused before
    polling (serve keeps its counters in memory)."""
    from tests.live.control_support import ENV

    targets = _up_and_silent(tmp_path, snmpd)
    db = str(tmp_path / "plant.duckdb")
    handover = tmp_path / "tmp"
    handover.mkdir()
    env = {**ENV, "TMPDIR": str(handover)}

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tsfleet", "--db", db, *argv], env=env,
                              capture_output=True, text=True, timeout=120)

    srv = RunningServer(db, run_command=main)
    try:
        for _ in range(2):
            r = cli("snmp-poll", "--targets", str(targets), "--timeout", "0.5",
                    "--retries", "0")
            assert (r.returncode, r.stderr) == (0, "")
            assert r.stdout == "polled 2 agents: 1 up, 1 down (gw-silent); 2 rows stored\n"
        assert list(handover.iterdir()) == []
        cur = srv.server.fleet.con.cursor()
        up = cur.execute("select n_in_octets from gateway_stats where gateway_id = 'gw-up' "
                         "order by observed_at").fetchall()
        assert len(up) == 2 and up[0][0] is None and up[1][0] is not None
        assert cur.execute("select count(*) from snmp_counters").fetchall()[0][0] > 0
        stale = tmp_path / "stale.json"
        stale.write_text(json.dumps({"targets": str(targets), "base": [], "state": [],
                                     "rows": [{"gateway_id": "gw-up", "is_up": False,
                                               "observed_at": time.time()}]}))
        r = cli("snmp-poll", "--targets", str(targets), "--store-polled", str(stale))
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.startswith("tsfleet: error: another snmp-poll stored some of")
        assert r.stderr.count("\n") == 1
        assert cur.execute("select count(*) from gateway_stats").fetchall()[0][0] == 4
        cur.close()
    finally:
        srv.stop()
    srv = RunningServer(db, run_command=main, snmp_targets=str(targets), snmp_every_s=60)
    try:
        r = cli("snmp-poll", "--targets", str(targets))
        assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
        assert r.stderr.startswith("tsfleet: error: tsfleet serve polls SNMP itself")
        answer = srv.server.control.run_cli(["snmp-poll", "--targets", str(targets),
                                             "--store-polled", str(stale)], None)
        assert answer["rc"] == 2 and "polls SNMP itself" in answer["stderr"]
    finally:
        srv.stop()
