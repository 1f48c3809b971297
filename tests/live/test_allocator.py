"""``tsfleet serve`` lets DuckDB's allocator give freed memory back (issue 22).

DuckDB allocates through its bundled jemalloc, which keeps freed pages for reuse; glibc's
``malloc_trim`` never reaches them, so after a checkpoint or an analysis that held a few
hundred MB the server stayed that large. ``purge_allocator`` turns on jemalloc's
background purge; ``serve`` does it unless ``--no-allocator-purge``."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time

import pytest

from tests.live.live_support import RunningServer
from tsfleet.cli import main

# a child process: RSS before, at the peak of a large aggregate, and once it has settled
PROBE = r"""
import json, sys, time
import duckdb
from tsfleet.live.server import purge_allocator

def rss_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) / 1024

con = duckdb.connect()
con.execute("SET threads = 2")
if sys.argv[1] == "on":
    purge_allocator(con)
start = rss_mb()
con.execute("create temp table t as select range as i, repeat('x', 40) || range::varchar as s "
            "from range(2000000)")
con.execute("select s, count(*) from t group by s order by 2 desc limit 1").fetchall()
peak = rss_mb()
con.execute("drop table t")
settled = peak
for _ in range(40):  # up to 4 s for the background threads
    time.sleep(0.1)
    settled = rss_mb()
    if settled < start + 0.2 * (peak - start):
        break
print(json.dumps({"start": start, "peak": peak, "settled": settled}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_freed_duckdb_memory_leaves_the_process_only_with_the_purge():
    off, on = probe("off"), probe("on")
    for r in (off, on):
        assert r["peak"] - r["start"] > 150, r  # the aggregate held a few hundred MB
    # without the purge jemalloc keeps most of it; with it, RSS falls back near the start
    assert off["settled"] - off["start"] > 0.5 * (off["peak"] - off["start"]), off
    assert on["settled"] - on["start"] < 0.2 * (on["peak"] - on["start"]), on


def setting(srv: RunningServer) -> bool:
    cur = srv.server.fleet.con.cursor()
    try:
        value = cur.execute("select current_setting('allocator_background_threads')").fetchall()
    finally:
        cur.close()
    return str(value[0][0]).lower() == "true"


@pytest.mark.parametrize("purge", [True, False])
def test_serve_purges_by_default_and_not_when_asked(tmp_path, purge):
    options = {} if purge else {"allocator_purge": False}
    srv = RunningServer(str(tmp_path / "s.duckdb"), control=False, **options)
    try:
        assert setting(srv) is purge
    finally:
        srv.stop()


def test_the_cli_option_reaches_the_server(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr("tsfleet.live.server.serve", lambda config, **_: seen.append(config))
    db = str(tmp_path / "s.duckdb")
    assert main(["--db", db, "serve", "--mqtt", "127.0.0.1:1"]) == 0
    assert main(["--db", db, "serve", "--mqtt", "127.0.0.1:1", "--no-allocator-purge"]) == 0
    assert [c.allocator_purge for c in seen] == [True, False]


# --memory-log: a line of RSS, peak RSS and DuckDB's memory every N seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_line_reports_this_process_and_duckdb():
    import duckdb

    from tsfleet.live.server import memory_line, process_memory

    con = duckdb.connect()
    con.execute("create table t as select range as i from range(3000000)")  # ~24 MB in memory
    mem = process_memory()
    assert 0 < mem["VmRSS"] <= mem["VmHWM"]
    line = memory_line(con)
    rss, peak, duck = (float(x) for x in re.fullmatch(
        r"RSS (\d+) MB \(peak (\d+) MB\); DuckDB (\d+) MB \(.+\)", line).groups())
    assert abs(rss - mem["VmRSS"] / 1e6) < 50 and peak >= rss, line
    held = sum(b for _, b in con.execute(
        "select tag, memory_usage_bytes from duckdb_memory()").fetchall()) / 1e6
    assert held > 10 and abs(duck - held) <= 1, (line, held)


def test_serve_logs_memory_every_n_seconds_when_asked(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tsfleet.live.memory")
    srv = RunningServer(str(tmp_path / "s.duckdb"), control=False, memory_log_s=0.2)
    try:
        time.sleep(1.1)
    finally:
        srv.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "tsfleet.live.memory"]
    assert len(lines) >= 3 and all(re.match(r"live: memory: RSS \d+ MB \(peak \d+ MB\); "
                                            r"DuckDB \d+ MB", s) for s in lines), lines
    caplog.clear()
    srv = RunningServer(str(tmp_path / "s.duckdb"), control=False)
    try:
        time.sleep(0.5)
    finally:
        srv.stop()
    assert not [r for r in caplog.records if r.name == "tsfleet.live.memory"]


def test_the_memory_log_option_reaches_the_server_and_is_checked(monkeypatch, tmp_path, capsys):
    seen = []
    monkeypatch.setattr("tsfleet.live.server.serve", lambda config, **_: seen.append(config))
    db = str(tmp_path / "s.duckdb")
    assert main(["--db", db, "serve", "--mqtt", "127.0.0.1:1"]) == 0
    assert main(["--db", db, "serve", "--mqtt", "127.0.0.1:1", "--memory-log", "30"]) == 0
    assert [c.memory_log_s for c in seen] == [None, 30.0]
    assert logging.getLogger("tsfleet.live.memory").getEffectiveLevel() == logging.INFO
    assert main(["--db", db, "serve", "--mqtt", "127.0.0.1:1", "--memory-log", "0"]) == 2
    assert "--memory-log" in capsys.readouterr().err
