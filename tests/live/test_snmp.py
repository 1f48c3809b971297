"""SNMP polling against a real net-snmp ``snmpd`` on 127.0.0.1 (v2c and v3 authPriv),
and an agent that does not answer: gateway_stats rows, down when silent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from tsfleet import Fleet
from tsfleet.cli import main

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
    time.sleep(1.0)
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
