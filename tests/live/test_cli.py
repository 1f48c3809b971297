"""``tsfleet serve`` refuses bad options in one line, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsfleet.cli import main


def test_serve_needs_a_transport(capsys, tmp_path):
    assert main(["serve", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "give --mqtt HOST:PORT, --coap HOST:PORT, --coaps HOST:PORT or several" in \
        capsys.readouterr().err


def test_serve_refuses_a_wrong_profile_folder_before_binding(capsys, tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\nmanufacturer = "X"\n'
                                       '[fields.t]\nmetric = "temperature_c"\nunit = "mV"\n')
    assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--coap", "127.0.0.1:1",
                 "--profiles", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml is invalid: fields.t: unit 'mV' measures voltage" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--coap", "127.0.0.1:99999"], "argument --coap: a port is within 0..65535, got 99999"),
    (["--coap", "127.0.0.1:-5"], "argument --coap: a port is within 0..65535, got -5"),
    (["--coaps", "127.0.0.1:70000", "--coap-psk", "psk"], "argument --coaps: a port"),
    (["--coap", "127.0.0.1:0", "--metrics", "127.0.0.1:99999"], "argument --metrics: a port"),
    (["--mqtt", "127.0.0.1:99999"], "argument --mqtt: a port is within 1..65535"),
    (["--chirpstack-mqtt", "127.0.0.1:99999"], "argument --chirpstack-mqtt: a port"),
    (["--tts-mqtt", "127.0.0.1:0"], "argument --tts-mqtt: a port is within 1..65535, got 0"),
    (["--coap", "127.0.0.1:0", "--control-port", "99999"], "argument --control-port: a port"),
    (["--opcua", "opc.tcp://127.0.0.1:99999", "--opcua-map", "m.json"],
     "argument --opcua: a port is within 1..65535"),
    (["--coap", "127.0.0.1:0", "--alertmanager", "http://127.0.0.1:-5"],
     "argument --alertmanager: a port is within 1..65535"),
    (["--coap", "127.0.0.1:abc"], "argument --coap: expected host:port, got '127.0.0.1:abc'"),
])
def test_serve_refuses_a_port_out_of_range_in_one_line_before_starting(capsys, tmp_path, argv,
                                                                      message):
    try:
        code = main(["serve", "--db", str(tmp_path / "x.duckdb"), *argv])
    except SystemExit as exc:   # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not err.startswith("tsfleet serve: /")       # no start-up line
    assert not (tmp_path / "x.duckdb").exists()


def test_serve_checks_every_option_before_its_start_up_line(capsys, tmp_path):
    assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--coap", "127.0.0.1:0",
                 "--batch-rows", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tsfleet: error: --batch-rows, --batch-delay, --max-payload") \
        and len(err.splitlines()) == 1


def test_snmp_targets_refuse_a_port_out_of_range(capsys, tmp_path):
    targets = tmp_path / "t.toml"
    targets.write_text('[[agent]]\ngateway_id = "gw-1"\naddress = "127.0.0.1:99999"\n'
                       'community = "public"\n')
    assert main(["snmp-poll", "--targets", str(targets), "--db", str(tmp_path / "x.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "a port is within 0..65535, got 99999" in err and len(err.splitlines()) == 1


def test_serve_start_up_line_fits_120_columns(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    # (a name any wrap keeps whole: under pytest-xdist the folder alone is ~80 characters)
    db = tmp_path / "a-long-store-name.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "tsfleet", "--db", str(db), "serve",
                             "--coap", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not Path(f"{db}.serve.json").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    assert " ".join(err.split()).startswith(f"tsfleet serve: {db} (mqtt -, coap 127.0.0.1:0"), err
    assert [line for line in err.splitlines() if len(line) > 120] == []


def test_snmp_poll_of_one_silent_agent_reads_as_english(capsys, tmp_path):
    targets = tmp_path / "t.toml"
    targets.write_text('[[agent]]\ngateway_id = "gw-1"\naddress = "127.0.0.1:9"\n'
                       'community = "public"\n')
    assert main(["snmp-poll", "--targets", str(targets), "--timeout", "0.2", "--retries", "0",
                 "--db", str(tmp_path / "x.duckdb")]) == 0
    assert capsys.readouterr().out == "polled 1 agent: 0 up, 1 down (gw-1); 1 row stored\n"
