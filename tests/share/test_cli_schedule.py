"""``tsfleet snapshot`` / ``tsfleet export`` and the scheduler ``serve`` uses."""

from __future__ import annotations

import duckdb
import pytest

from tsfleet.cli import main
from tsfleet.errors import InvalidParameter
from tsfleet.share import SnapshotScheduler, parse_interval


def test_cli_snapshot_and_export(live, tmp_path, capsys):
    path = live.path
    n = live.query("select count(*) as n from readings")[0]["n"]
    live.close()
    out = tmp_path / "share.duckdb"
    assert main(["--db", path, "snapshot", str(out), "--storage-version", "v1.0.0"]) == 0
    assert "storage v1.0.0" in capsys.readouterr().out
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("select count(*) from readings").fetchone()[0] == n
    assert main(["--db", path, "export", str(tmp_path / "lake"), "--since", "2026-06-01",
                 "--until", "2026-06-13", "--buckets", "4"]) == 0
    assert f"{n:,} readings" in capsys.readouterr().out
    assert main(["--db", path, "snapshot", str(out), "--storage-version", "1"]) == 2
    assert "storage version must look like" in capsys.readouterr().err
    assert main(["--db", str(tmp_path / "none.duckdb"), "export", str(tmp_path / "l2")]) == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_scheduler_snapshots_when_due_and_survives_failures(live, tmp_path):
    clock, errors = FakeClock(), []
    out = tmp_path / "share.duckdb"
    sched = SnapshotScheduler(live, out, "5m", clock=clock, on_error=errors.append)
    assert sched.tick() is not None and sched.n_taken == 1
    clock.now += 299
    assert sched.tick() is None
    clock.now += 1
    assert sched.tick() is not None and sched.n_taken == 2
    first = out.read_bytes()
    (tmp_path / "share.duckdb.wal").write_bytes(b"someone wrote here")
    clock.now += 300
    assert sched.tick() is None and sched.n_failed == 1
    assert "read-write" in str(sched.last_error) and errors == [sched.last_error]
    assert out.read_bytes() == first  # the previous snapshot stays
    (tmp_path / "share.duckdb.wal").unlink()
    clock.now += 300
    assert sched.tick() is not None and sched.last_error is None


@pytest.mark.parametrize("text,seconds", [("90", 90), ("30s", 30), ("5m", 300), ("2h", 7200),
                                          ("1d", 86400), ("0.5m", 30), (45, 45)])
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "-1m", "0", "", "m"])
def test_parse_interval_refuses(text):
    with pytest.raises(InvalidParameter, match="interval must"):
        parse_interval(text)
