"""Helpers of the control-interface tests: a demo store, ``tsfleet serve`` as a child
process, and the ``tsfleet`` command as another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**{k: v for k, v in os.environ.items() if k != "TSFLEET_DB"}, "PYTHONPATH": str(ROOT)}


def tsfleet(*argv: str, cwd: str | Path | None = None, timeout: float = 120) -> \
        subprocess.CompletedProcess:
    """``python -m tsfleet ARGV`` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "tsfleet", *argv], env=ENV, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


class ServeProcess:
    """``python -m tsfleet serve`` on ``db`` as a child process, its log kept."""

    def __init__(self, db: str, port: int, *extra: str, cwd: str | Path | None = None):
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tsfleet", "serve", "--db", db, "--mqtt",
             f"127.0.0.1:{port}", "--topic", "fleet/#", "--analyze-every", "off",
             "--batch-delay", "0.2", "-v", *extra],
            env=ENV, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "subscribed" in line:
                self.subscribed.set()

    @property
    def advert(self) -> Path:
        return Path(self.db + ".serve.json")

    def wait_ready(self, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while not (self.subscribed.is_set() and self.advert.exists()):
            assert self.proc.poll() is None, "serve exited: " + "".join(self.lines[-20:])
            assert time.monotonic() < deadline, "serve did not start: " + "".join(self.lines)
            time.sleep(0.05)
        return json.loads(self.advert.read_text())

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
