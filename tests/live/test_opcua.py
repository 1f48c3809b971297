"""OPC UA into the store, against a real asyncua server started by the test on 127.0.0.1
with Basic256Sha256 SignAndEncrypt and a user with a password. What the server's
variables take must land as readings of the map's environment monitors at their source
timestamps; a server restart mid-run must resume without duplicates and without losing
what the server still holds; a bad status or a non-number is quarantined; a wrong map
file is one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from asyncua import ua

from tests.live.hostile_support import documented_reasons
from tests.live.live_support import T0, RunningServer
from tests.live.opcua_support import PASSWORD, USER, UaServer, dv, make_certificates
from tsfleet import Fleet
from tsfleet.errors import InvalidParameter
from tsfleet.live.broker import free_port
from tsfleet.live.errors import ProfileError
from tsfleet.live.opcua import OpcuaSecurity, load_map
from tsfleet.service.metrics import ServeMetrics

pytestmark = pytest.mark.network

MAP = {"sampling_ms": 200, "items": [
    {"node": "ns=2;s=Zone1.Temperature", "device": "em-zone-1", "metric": "temperature_c",
     "zone": "hall-1"},
    {"browse": "ns=2;s=Zones", "name": "Humid*", "depth": 2, "device": "em-{parent}",
     "metric": "humidity_pct", "site": "north"},
    {"node": "ns=2;s=Zone2.Temperature", "device": "em-zone-2", "metric": "temperature_c",
     "unit": "F"},
]}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("opcua-certs"))


INITIAL = {"Zone1.Temperature": dv(20.0, T0), "Zone1.Humidity": dv(40.0, T0),
           "Zone2.Humidity": dv(41.0, T0), "Zone2.Temperature": dv(68.0, T0),
           "Zone3.Temperature": dv(19.0, T0), "Zone3.Humidity": dv(42.0, T0),
           "Zone3.Label": dv("ok", T0, vtype=ua.VariantType.String)}


@pytest.fixture(scope="module")
def shared(certs):
    """One server for the tests that do not stop it (each uses its own variables: Zone1
    and Zone2 the values test, Zone3 the quarantine test)."""
    s = UaServer(free_port(), certs, zones=3).start(INITIAL)
    yield s
    s.close()


@pytest.fixture
def setup(certs, tmp_path):
    """(map file, security, server factory); every server started is closed."""
    mapping = tmp_path / "opcua.json"
    mapping.write_text(json.dumps(MAP))
    pw = tmp_path / "password"
    pw.write_text(PASSWORD + "\n")
    security = OpcuaSecurity(policy="Basic256Sha256", cert_file=str(certs["client_cert"]),
                             key_file=str(certs["client_key"]), username=USER,
                             password_file=str(pw))
    servers = []

    def server(port, initial=None):
        s = UaServer(port, certs).start(initial)
        servers.append(s)
        return s

    yield mapping, security, server
    for s in servers:
        s.close()


def wait_for(serve: RunningServer, sql: str, n: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        serve.sync()
        got = serve.count(sql)
        if got >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def connected(serve: RunningServer, n: int = 1, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while serve.server.opcua.stats.n_connects < n or not serve.server.opcua.connected.is_set():
        assert time.monotonic() < deadline, serve.server.opcua.stats
        time.sleep(0.05)


def readings(db: str) -> dict:
    with Fleet(db) as f:
        return {(r["device_id"], round(r["t"], 3), r["metric"]): r["value"] for r in f.query(
            "select device_id, epoch(observed_at) as t, metric, value from readings")}


def test_values_land_as_readings_of_declared_monitors(setup, shared, tmp_path):
    mapping, security, _ = setup
    db = str(tmp_path / "ua.duckdb")
    with Fleet(db) as f:  # declared before: its type and site must survive
        f.ingest("devices", [{"device_id": "em-zone-1", "device_type": "th-200",
                              "site": "south"},
                             {"device_id": "em-Zone2", "device_type": "th-300", "zone": "hall-2",
                              "manufacturer": "Acme"}])
    ua_server = shared
    serve = RunningServer(db, opcua=ua_server.url, opcua_map=str(mapping),
                          opcua_security=security, batch_delay_s=0.1)
    try:
        connected(serve)
        for k in range(1, 4):
            ua_server.write("Zone1.Temperature", dv(20.0 + k, T0 + 60 * k))
            ua_server.write("Zone2.Humidity", dv(41.0 + k, T0 + 60 * k + 0.25))
        ua_server.write("Zone2.Temperature", dv(212.0, T0 + 30))
        got = wait_for(serve, "select count(*) as n from readings", 12)
    finally:
        serve.stop()
    assert got == 12
    want = {("em-zone-1", T0, "temperature_c"): 20.0, ("em-Zone1", T0, "humidity_pct"): 40.0,
            ("em-Zone2", T0, "humidity_pct"): 41.0, ("em-Zone3", T0, "humidity_pct"): 42.0,
            ("em-zone-2", T0, "temperature_c"): pytest.approx(20.0),
            ("em-zone-2", T0 + 30, "temperature_c"): pytest.approx(100.0)}
    for k in range(1, 4):
        want[("em-zone-1", T0 + 60 * k, "temperature_c")] = 20.0 + k
        want[("em-Zone2", T0 + 60 * k + 0.25, "humidity_pct")] = 41.0 + k
    assert readings(db) == want
    with Fleet(db) as f:
        mons = {r["device_id"]: (r["zone"], r["site"]) for r in f.query(
            "select device_id, zone, site from environment_monitors")}
        types = {r["device_id"]: r["device_type"] for r in f.query(
            "select device_id, device_type from devices")}
    assert mons == {"em-zone-1": ("hall-1", "south"), "em-zone-2": ("unknown", "unknown"),
                    "em-Zone1": ("unknown", "north"), "em-Zone2": ("hall-2", "north"),
                    "em-Zone3": ("unknown", "north")}
    assert types == {"em-zone-1": "th-200", "em-Zone2": "th-300", "em-Zone1": "env_monitor",
                     "em-Zone3": "env_monitor", "em-zone-2": "env_monitor"}


def test_server_restart_resumes_without_duplicates_or_losses(setup, tmp_path):
    mapping, security, start = setup
    db = str(tmp_path / "ua.duckdb")
    port = free_port()
    ua_server = start(port, INITIAL)  # two zones: the map finds 4 variables
    serve = RunningServer(db, opcua=ua_server.url, opcua_map=str(mapping),
                          opcua_security=security, batch_delay_s=0.1)
    try:
        connected(serve)
        for k in range(1, 4):
            ua_server.write("Zone1.Temperature", dv(20.0 + k, T0 + 60 * k))
        assert wait_for(serve, "select count(*) as n from readings", 7) == 7
        ua_server.stop()
        # while tsfleet is away the value changes: the new server holds it at start
        held = dict(INITIAL, **{"Zone1.Temperature": dv(30.0, T0 + 600)})
        ua_server = start(port, held)
        connected(serve, 2)
        ua_server.write("Zone1.Temperature", dv(31.0, T0 + 660))
        assert wait_for(serve, "select count(*) as n from readings", 9) == 9
        stats = serve.server.opcua.stats
        dups = serve.server.writer.stats.n_duplicates
    finally:
        serve.stop()
    temps = sorted((t, v) for (d, t, m), v in readings(db).items() if d == "em-zone-1")
    assert temps == [(T0, 20.0), (T0 + 60, 21.0), (T0 + 120, 22.0), (T0 + 180, 23.0),
                     (T0 + 600, 30.0), (T0 + 660, 31.0)]
    with Fleet(db) as f:
        n, distinct = f.query("select count(*) as n, count(distinct (device_id, metric, "
                              "observed_at)) as d from readings")[0].values()
    assert n == distinct == 9
    assert stats.n_connects == 2 and dups >= 3  # the unchanged values, read again


def test_bad_status_and_non_numbers_are_quarantined(setup, shared, tmp_path):
    _, security, _ = setup
    mapping = tmp_path / "zone3.json"  # a String variable mapped to a metric: a wrong map
    mapping.write_text(json.dumps({"sampling_ms": 200, "items": [
        {"node": "ns=2;s=Zone3.Temperature", "device": "em-3", "metric": "temperature_c"},
        {"node": "ns=2;s=Zone3.Label", "device": "em-3", "metric": "vibration_g"}]}))
    db = str(tmp_path / "ua.duckdb")
    serve = RunningServer(db, opcua=shared.url, opcua_map=str(mapping),
                          opcua_security=security, batch_delay_s=0.1)
    try:
        connected(serve)
        shared.write("Zone3.Temperature", dv(85.0, T0 + 60, ua.StatusCodes.BadSensorFailure))
        shared.write("Zone3.Temperature", dv(22.0, T0 + 120))
        assert wait_for(serve, "select count(*) as n from quarantine", 2) == 2
        assert wait_for(serve, "select count(*) as n from readings", 2) == 2
        text = ServeMetrics().render(serve.server)  # what `serve --metrics` exposes
    finally:
        serve.stop()
    lbl = f'server="{shared.url}"'
    for line in (f"tsfleet_opcua_connected{{{lbl}}} 1", f"tsfleet_opcua_connects_total{{{lbl}}} 1",
                 f"tsfleet_opcua_monitored_items{{{lbl}}} 2",
                 f'tsfleet_opcua_rejected_total{{{lbl},reason="opcua_bad_status"}} 1'):
        assert line in text.splitlines(), line
    # the String node is delivered at the first read and again on its change: both are
    # counted as received; the quarantine keeps one row (identical records are de-duplicated)
    nn = [x for x in text.splitlines() if 'reason="opcua_not_numeric"' in x]
    assert len(nn) == 1 and float(nn[0].rsplit(" ", 1)[1]) >= 1, nn
    with Fleet(db) as f:
        q = sorted((r["reason"], r["detail"]) for r in f.query(
            "select reason, detail from quarantine"))
    assert [r for r, _ in q] == ["opcua_bad_status", "opcua_not_numeric"]
    assert {r for r, _ in q} <= documented_reasons()  # docs/live.md lists them
    assert "BadSensorFailure" in q[0][1] and "Zone3.Temperature" in q[0][1]
    assert "String" in q[1][1] and "Zone3.Label" in q[1][1]
    assert readings(db) == {("em-3", T0, "temperature_c"): 19.0,
                            ("em-3", T0 + 120, "temperature_c"): 22.0}


def test_wrong_credentials_keep_retrying_without_stopping(setup, shared, tmp_path):
    mapping, security, _ = setup
    pw = tmp_path / "wrong"
    pw.write_text("not-the-password\n")
    bad = OpcuaSecurity(policy="Basic256Sha256", cert_file=security.cert_file,
                        key_file=security.key_file, username=USER, password_file=str(pw))
    serve = RunningServer(str(tmp_path / "ua.duckdb"), opcua=shared.url,
                          opcua_map=str(mapping), opcua_security=bad)
    try:
        deadline = time.monotonic() + 15
        while serve.server.opcua.stats.n_failures < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = serve.server.opcua.stats
        assert serve.thread.is_alive()
    finally:
        serve.stop()
    assert stats.n_failures >= 2 and stats.n_connects == 0
    assert "BadUserAccessDenied" in stats.last_error or "Denied" in stats.last_error, stats


def test_bad_map_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"items": [{"node": "ns=2;i=1", "device": "em-1",
                                          "metric": "temperature_c", "unit": "%RH"}]}))
    cmd = [sys.executable, "-m", "tsfleet", "serve", "--db", str(tmp_path / "x.duckdb"),
           "--opcua", "opc.tcp://127.0.0.1:1", "--opcua-map", str(bad)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and "items.0" in lines[-1] and "bad.json" in lines[-1]
    assert len([ln for ln in lines if "error" in ln.lower()]) == 1


@pytest.mark.parametrize("text, match", [
    ("{", "not JSON"),
    ('{"items": []}', "items"),
    ('{"items": [{"device": "d", "metric": "temperature_c"}]}', "exactly one of node"),
    ('{"items": [{"node": "i=1", "device": "{zone}", "metric": "temperature_c"}]}', "{name}"),
    ('{"items": [{"node": "i=1", "device": "d", "metric": "x"}]}', "canonical"),
    ('{"items": [{"node": "i=1", "device": "d", "metric": "temperature_c"}], "x": 1}', "x"),
])
def test_map_file_errors_name_the_problem(tmp_path, text, match):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(ProfileError, match=match):
        load_map(bad)


def test_security_options_are_checked(tmp_path, monkeypatch):
    with pytest.raises(ProfileError, match="cannot read"):
        load_map(tmp_path / "missing.json")
    with pytest.raises(InvalidParameter, match="--opcua-cert"):
        OpcuaSecurity(policy="Basic256Sha256").check()
    with pytest.raises(InvalidParameter, match="not set"):
        OpcuaSecurity(username="u", password_env="TSFLEET_NO_SUCH_VAR").check()
    with pytest.raises(InvalidParameter, match="needs --opcua-username"):
        OpcuaSecurity(password_env="X").check()
    with pytest.raises(InvalidParameter, match="no such file"):
        OpcuaSecurity(policy="Basic256Sha256", cert_file="/nonexistent",
                      key_file="/nonexistent").check()
    monkeypatch.setenv("TSFLEET_UA_PW", "pw")
    ok = OpcuaSecurity(username="u", password_env="TSFLEET_UA_PW")
    ok.check()
    assert ok.password() == "pw" and "user u" in ok.describe()
