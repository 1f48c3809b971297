"""SIGKILL of ``tsfleet serve`` mid-batch: unacknowledged messages are redelivered,
and the stored count is exact."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.live.live_support import T0, Publisher, senml_json
from tsfleet import Fleet

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]


class Serve:
    """``python -m tsfleet serve`` as a child process, its log read line by line."""

    def __init__(self, db: str, port: int):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tsfleet", "serve", "--db", db, "--mqtt",
             f"127.0.0.1:{port}", "--topic", "fleet/#", "--client-id", "t-crash",
             "--batch-delay", "0.3", "--batch-rows", "2000", "-v"],
            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.held = 0
        self.redelivered = 0
        self.subscribed = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "subscribed" in line:
                self.subscribed.set()
            m = re.search(r"(\d+) redelivered so far; store holds (\d+) readings", line)
            if m:
                self.redelivered, self.held = int(m[1]), int(m[2])

    def wait_held(self, n: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while self.held < n:
            assert self.proc.poll() is None, "".join(self.lines[-20:])
            assert time.monotonic() < deadline, f"store holds {self.held} of {n}"
            time.sleep(0.05)


def test_sigkill_mid_batch_then_restart_stores_every_reading_once(broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    n_msgs, per = 400, 25
    first = Serve(db, broker.port)
    assert first.subscribed.wait(60), "".join(first.lines)
    pub = Publisher(broker.port)

    def stream():
        for i in range(n_msgs):
            pack = [{"bn": f"k-{i % 5}/", "bt": T0 + i * 60, "n": "temp", "u": "Cel", "v": 1.0}]
            pack += [{"n": "temp", "u": "Cel", "v": 1.0 + k, "t": k} for k in range(1, per)]
            pub.publish(f"fleet/k-{i % 5}/senml", senml_json(pack))
            time.sleep(0.002)

    t = threading.Thread(target=stream)
    t.start()
    first.wait_held(n_msgs * per // 4)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    assert first.held < n_msgs * per
    t.join(120)
    assert pub.n_published == n_msgs
    second = Serve(db, broker.port)
    second.wait_held(n_msgs * per)
    assert second.redelivered > 0  # messages received but not acknowledged came back
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(60) == 0
    pub.close()
    assert any("stopped after" in line for line in second.lines)
    with Fleet(db, read_only=True) as f:
        n, distinct = f.query("select count(*) as n, count(distinct (device_id, observed_at, "
                              "metric)) as d from readings")[0].values()
        assert n == distinct == n_msgs * per
