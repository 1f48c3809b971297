"""A silence longer than the calendar is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.cli import main


@pytest.mark.parametrize("duration", ["99999999999d", "3000000d", "99999999999999999999s"])
def test_a_silence_past_the_year_9999_is_refused_in_one_line(tmp_path, capsys, duration):
    db = str(tmp_path / "s.duckdb")
    Fleet(db).close()
    code = main(["--db", db, "alerts", "silence", "site=plant-a", "--duration", duration])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"tsfleet: error: a silence of {duration} would end after the year 9999; "
        "give a shorter duration"]
    with Fleet(db, read_only=True) as fleet:
        assert fleet.query("select count(*) as n from silences")[0]["n"] == 0
