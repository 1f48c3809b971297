"""``tsfleet serve`` refuses bad options in one line, exit status 2."""

from __future__ import annotations

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
