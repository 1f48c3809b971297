"""``tsfleet serve`` keeps DuckDB's cache of store blocks within ``--cache-limit``
(issue 22: a store grown by a flood of rejected payloads must not grow the server)."""

from __future__ import annotations

import time

import duckdb
import pytest

from tests.live.test_hostile import Run
from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter
from tsfleet.live.hostile import good_pack
from tsfleet.live.senml import encode_json
from tsfleet.live.server import ServeConfig, parse_size
from tsfleet.live.writer import Writer, trim_cache

MB = 1024 * 1024


def cached(con) -> int:
    rows = con.execute("select memory_usage_bytes from duckdb_memory() "
                       "where tag = 'BASE_TABLE'").fetchall()
    return rows[0][0]


def big_store(path) -> duckdb.DuckDBPyConnection:
    """A file store of ~40 MB of blocks, all read once (so DuckDB caches them)."""
    con = duckdb.connect(str(path))
    con.execute("create table t as select i, md5(i::varchar) || md5((i + 1)::varchar) as s "
                "from range(1500000) r(i)")
    con.execute("checkpoint")
    con.close()
    con = duckdb.connect(str(path))
    assert con.execute("select count(distinct s) from t").fetchall() == [(1_500_000,)]
    return con


def test_trim_cache_evicts_blocks_past_the_budget_and_puts_the_limit_back(tmp_path):
    con = big_store(tmp_path / "a.duckdb")
    before = cached(con)
    assert before > 20 * MB
    assert trim_cache(con, before + 10 * MB, None) == 0  # within the budget: nothing to do
    evicted = trim_cache(con, 4 * MB, None)
    assert cached(con) <= 5 * MB and evicted >= before - 5 * MB
    default = duckdb.connect().execute("select current_setting('memory_limit')").fetchall()
    assert con.execute("select current_setting('memory_limit')").fetchall() == default
    # the evicted blocks are read again when a query needs them
    assert con.execute("select count(distinct s) from t").fetchall() == [(1_500_000,)]
    con.execute("SET memory_limit = '900MB'")
    trim_cache(con, 0, "900MB")
    assert cached(con) <= MB
    assert con.execute("select current_setting('memory_limit')").fetchall() in (
        [("858.3 MiB",)], [("900.0 MB",)])


def test_the_writer_trims_between_commits_and_ingest_goes_on(tmp_path):
    big_store(tmp_path / "w.duckdb").close()
    run = Run()
    run.fleet = Fleet(str(tmp_path / "w.duckdb"))
    run.writer = Writer(run.fleet, max_delay=0.05, cache_limit=2 * MB, trim_every=0.1)
    run.writer.start()
    run.writer.call(lambda: run.fleet.con.execute("select count(distinct s) from t").fetchall())
    deadline = time.monotonic() + 30
    while run.writer.n_trimmed_bytes < 10 * MB:
        assert time.monotonic() < deadline, "the writer did not trim the cache"
        time.sleep(0.1)
    assert run.writer.call(lambda: cached(run.fleet.con)) <= 3 * MB
    for i in range(3):
        run.writer.submit(run.env(i, encode_json(good_pack("good-1", i))))
    assert run.writer.sync(30) and sorted(run.acked) == [0, 1, 2]
    run.writer.stop()
    assert run.fleet.query("select count(*) as n from readings")[0]["n"] == 15
    run.fleet.close()


def test_sizes_and_the_cache_limit_option_are_checked(capsys, tmp_path):
    assert parse_size("64MiB") == 64 * MB and parse_size("1.5 GB") == 1_500_000_000
    assert parse_size("0B") == 0
    with pytest.raises(InvalidParameter, match="expected a size such as 64MB"):
        parse_size("64 apples")
    with pytest.raises(InvalidParameter, match="cache_limit must be a size"):
        ServeConfig(db=":memory:", coap="127.0.0.1:1", cache_limit=-1).check()
    assert ServeConfig(db=":memory:").cache_limit == 64 * MB
    assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--coap", "127.0.0.1:1",
                 "--cache-limit", "lots"]) == 2
    err = capsys.readouterr().err
    assert "expected a size such as 64MB or 1GiB, got 'lots'" in err and "Traceback" not in err
