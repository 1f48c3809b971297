"""A throw-away mosquitto broker on 127.0.0.1, for tests, benchmarks and trials.

>>> # with LocalBroker() as broker: ... broker.port ...
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tsfleet.errors import TsfleetError

#: The lowest port free_port hands out (above the registered services most hosts run).
FIRST_PORT = 20_000


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody uses at 127.0.0.1 right now, below the kernel's ephemeral range: a
    client socket opened meanwhile (by any process) is never given it, so it is still
    free when the caller binds it. (A port the kernel picked was taken in between once,
    by another test worker's UDP client: "address already in use".)"""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randrange(FIRST_PORT, low) if low > FIRST_PORT + 1000 else 0
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise TsfleetError(f"no free port at 127.0.0.1 between {FIRST_PORT} and {low}")


def _ephemeral_low(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def find_mosquitto() -> str | None:
    """The mosquitto binary (Debian installs it in /usr/sbin), or None."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()),
        None)


class LocalBroker:
    """mosquitto with persistence in a temp folder, so a restart keeps sessions.

    ``max_queued_messages 0`` and ``max_inflight_messages 0`` lift the default
    limits (1000 queued, 20 in flight per client) that would drop a backlog or
    throttle a subscriber that acknowledges in batches.
    """

    def __init__(self, port: int | None = None, *, persistence: bool = True):
        self.binary = find_mosquitto()
        if self.binary is None:
            raise TsfleetError("mosquitto is not installed (apt-get install mosquitto)")
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tsfleet-mosquitto-"))
        if os.geteuid() == 0:  # mosquitto started as root drops to the user "mosquitto",
            self.dir.chmod(0o777)  # which must be able to write its persistence file here
        self.config = self.dir / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 "max_queued_messages 0", "max_inflight_messages 0",
                 f"persistence {'true' if persistence else 'false'}",
                 f"persistence_location {self.dir}/", "autosave_interval 1",
                 "log_dest stderr"]
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> LocalBroker:
        self.log = self.dir / "mosquitto.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TsfleetError(f"mosquitto exited: {self.log.read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TsfleetError(f"mosquitto did not listen on 127.0.0.1:{self.port} "
                           f"within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
