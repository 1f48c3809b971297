"""``tsfleet environment ...`` on a store file."""

from __future__ import annotations

import json

from tsfleet.cli import main
from tsfleet.simulate import SimConfig, simulated_fleet


def test_cli_analyze_then_report_effects_envelopes_maintenance(tmp_path, capsys):
    db = str(tmp_path / "env.duckdb")
    simulated_fleet(SimConfig(n_devices=80, days=8, seed=3), path=db).close()
    assert main(["environment", "analyze", "--db", db]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["environment", "report", "--db", db]) == 0
    capsys.readouterr()
    assert main(["environment", "effects", "--method", "glm_poisson", "--format", "json",
                 "--db", db]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"] for r in rows} == {"glm_poisson"}
    assert main(["environment", "envelopes", "--device-type", "all", "--format", "csv",
                 "--db", db]) == 0
    assert capsys.readouterr().out.startswith("device_type,factor,")
    assert main(["environment", "limits", "--format", "json", "--db", db]) == 0
    limits = json.loads(capsys.readouterr().out)
    assert all(r["kind"] in ("keep_below", "lower_is_better") and r["sentence"] for r in limits)
    assert main(["environment", "limits", "--db", db]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ([r["sentence"] for r in limits] or ["no significant environmental effect"])
    # --format table is a table of the rows (it printed the sentences, as the default does)
    assert main(["environment", "limits", "--format", "table", "--db", db]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert (out[0].split()[0] == "outcome") if limits else (out == ["(no rows)"])
    assert main(["environment", "maintenance", "--limit", "3", "--db", db]) == 0
    assert "maintenance_rank" in capsys.readouterr().out
    assert main(["environment", "report", "--format", "json", "--db", db]) == 0
    json.loads(capsys.readouterr().out or "[]")
    assert main(["environment", "analyze", "--max-gap-hours", "-2", "--db", db]) == 2
    capsys.readouterr()
    # a device type the store does not have is a one-line error, not an empty answer
    for cmd in ("envelopes", "limits"):
        assert main(["environment", cmd, "--device-type", "temperture", "--db", db]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert captured.out == "" and len(err.splitlines()) == 1 and len(err) <= 120
        assert "no device of type 'temperture'" in err and "did you mean 'temperature'" in err
    assert main(["environment", "envelopes", "--device-type", "zzz", "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and len(err) <= 120 and "it has: " in err
    listed = err.split("it has: ", 1)[1].removesuffix(", ...").split(", ")
    assert len(listed) > 1 and len(set(listed)) == len(listed)     # each type once
    assert main(["sql", "--format", "json", "select min(device_type) as t from "
                 "environment_envelopes where device_type <> 'all'", "--db", db]) == 0
    known = json.loads(capsys.readouterr().out)[0]["t"]
    assert main(["environment", "envelopes", "--device-type", known, "--db", db]) == 0
    assert capsys.readouterr().out.startswith("device_type")


def test_sentences_wrap_to_120_columns_and_keep_every_word(tmp_path, capsys):
    """`report` and `limits` print whole sentences (260-280 characters for a zone), each
    wrapped to 120 columns with its continuation lines indented, and nothing lost."""
    db = str(tmp_path / "env.duckdb")
    simulated_fleet(SimConfig(n_devices=500, days=20, seed=5), path=db).close()
    assert main(["environment", "analyze", "--db", db]) == 0
    capsys.readouterr()
    for cmd, key in (("report", "sentence"), ("limits", "sentence")):
        assert main(["environment", cmd, "--format", "json", "--db", db]) == 0
        sentences = [r[key] for r in json.loads(capsys.readouterr().out)]
        assert sentences and max(len(s) for s in sentences) > 120
        assert main(["environment", cmd, "--db", db]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert max(len(line) for line in lines) <= 120
        if cmd == "report":   # the API's name for them works as well
            assert main(["environment", "recommendations", "--db", db]) == 0
            assert capsys.readouterr().out.splitlines() == lines
        starts = [i for i, line in enumerate(lines) if not line.startswith("  ")]
        assert len(starts) == len(sentences)
        for s, a, b in zip(sentences, starts, starts[1:] + [len(lines)], strict=True):
            assert " ".join(line.strip() for line in lines[a:b]) == s
