"""``tsfleet serve``'s writer checkpoints the store itself: in small steps
(``--checkpoint-wal``) and not beside an analysis (issue 22: DuckDB's automatic
checkpoint, at a 16 MiB WAL and at whichever commit passed it, set the server's RSS
peak under hostile traffic)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.live.test_hostile import Run
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter
from tsfleet.live.decode import Decoder
from tsfleet.live.server import ServeConfig, known_metrics
from tsfleet.live.writer import CHECKPOINT_FORCE_FACTOR, Writer

KB = 1024
LIMIT = 256 * KB


def batch(run: Run, start: int, n: int = 20) -> int:
    """``n`` distinct undecodable payloads of 8 KB (quarantined whole, long text) in one
    batch; returns the WAL's size once the writer is past the batch (two syncs: the
    first returns after the commit, the second after the writer's next loop)."""
    for i in range(start, start + n):
        run.writer.submit(run.env(i, b"[\"not json " + b"%08d" % i * 1000))
    assert run.writer.sync(30) and run.writer.sync(30)
    wal = run.wal
    return wal.stat().st_size if wal.exists() else 0


@pytest.fixture
def run(fleet):
    r = Run.__new__(Run)  # Run's decoder and envelopes, on a file store (a copy)
    r.fleet, r.acked = fleet, []
    r.decoder = Decoder(known_metrics(fleet), max_payload=20_000)
    r.wal = Path(fleet.path + ".wal")
    r.guard = threading.RLock()  # the analysis worker's lock
    r.writer = Writer(r.fleet, max_delay=0.05, checkpoint_wal=LIMIT, trim_guard=r.guard)
    r.writer.start()
    yield r
    r.writer.stop()


def test_the_wal_stays_under_the_limit_and_nothing_is_lost(run):
    sizes = [batch(run, 20 * k) for k in range(10)]
    assert max(sizes) < LIMIT, sizes  # past it, the writer checkpointed (WAL emptied)
    assert run.writer.n_checkpoints >= 3
    n = run.fleet.query("select count(*) as n from quarantine where reason = 'invalid_json'")
    assert n[0]["n"] == 200 and sorted(run.acked) == list(range(200))


def test_no_checkpoint_beside_an_analysis_until_the_wal_is_four_times_over(run):
    run.guard.acquire()  # an analysis runs
    try:
        sizes = [batch(run, 20 * k) for k in range(12)]
    finally:
        run.guard.release()
    assert run.writer.n_checkpoints_deferred >= 2
    assert any(LIMIT <= s for s in sizes), sizes  # deferred: the WAL grew past the limit
    assert max(sizes) < CHECKPOINT_FORCE_FACTOR * LIMIT, sizes  # and was bounded
    assert run.writer.n_checkpoints >= 1  # forced
    made = run.writer.n_checkpoints
    sizes = [batch(run, 1000 + 20 * k) for k in range(3)]  # the analysis is over
    assert run.writer.n_checkpoints > made and max(sizes) < LIMIT


def test_the_option_is_checked_and_off_leaves_duckdb_its_own(capsys, tmp_path, fleet):
    assert ServeConfig(db=":memory:").checkpoint_wal is None  # off unless asked for
    with pytest.raises(InvalidParameter, match="checkpoint_wal must be a size of 1 or more"):
        ServeConfig(db=":memory:", coap="127.0.0.1:1", checkpoint_wal=0).check()
    assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--coap", "127.0.0.1:1",
                 "--checkpoint-wal", "big"]) == 2
    err = capsys.readouterr().err
    assert "expected a size such as 64MB or 1GiB, got 'big'" in err and "Traceback" not in err
    Writer(fleet, checkpoint_wal=None).start()  # off: DuckDB's automatic checkpoint
    assert fleet.query("select current_setting('checkpoint_threshold') as t")[0]["t"] == \
        "16.0 MiB"
