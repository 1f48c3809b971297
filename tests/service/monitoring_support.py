"""A real Prometheus and a real Alertmanager (Debian's binaries) on 127.0.0.1, started
by the tests with a temp config and storage, stopped by their process id."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tsfleet.live.broker import free_port


def find(binary: str) -> str | None:
    return shutil.which(binary) or next(
        (p for p in (f"/usr/bin/{binary}", f"/usr/sbin/{binary}") if Path(p).is_file()), None)


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class _Process:
    name = ""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix=f"tsfleet-{self.name}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def _start(self, args: list[str], ready_path: str, timeout: float = 60.0):
        self.log = self.dir / "log.txt"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-800:]}")
            try:
                urllib.request.urlopen(self.url + ready_path, timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout} s: {self.log.read_text()[-800:]}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalPrometheus(_Process):
    """Prometheus scraping ``target`` (host:port) every ``interval``."""

    name = "prometheus"

    def __init__(self, target: str, interval: str = "1s"):
        super().__init__()
        self.binary = find("prometheus")
        (self.dir / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
            f"scrape_configs:\n  - job_name: tsfleet\n    static_configs:\n"
            f"      - targets: ['{target}']\n")

    def start(self) -> LocalPrometheus:
        return self._start([self.binary, f"--config.file={self.dir / 'prometheus.yml'}",
                            f"--storage.tsdb.path={self.dir / 'data'}",
                            f"--web.listen-address=127.0.0.1:{self.port}"], "/-/ready")

    def query(self, expr: str) -> list[dict]:
        q = urllib.parse.urlencode({"query": expr})
        body = get_json(f"{self.url}/api/v1/query?{q}")
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr: str, expected: float, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            v = self.value(expr)
            if v == expected:
                return v
            time.sleep(0.25)
        return v


class LocalAlertmanager(_Process):
    """Alertmanager with one do-nothing receiver; storage in a temp folder."""

    name = "alertmanager"

    def __init__(self):
        super().__init__()
        self.binary = find("prometheus-alertmanager") or find("alertmanager")
        self.cluster_port = free_port()
        (self.dir / "alertmanager.yml").write_text(
            "route:\n  receiver: 'null'\n  group_by: ['alertname']\n"
            "receivers:\n  - name: 'null'\n")

    def start(self) -> LocalAlertmanager:
        return self._start([self.binary, f"--config.file={self.dir / 'alertmanager.yml'}",
                            f"--storage.path={self.dir / 'data'}",
                            f"--web.listen-address=127.0.0.1:{self.port}",
                            "--cluster.listen-address="], "/-/ready")

    def alerts(self, **filters) -> list[dict]:
        q = urllib.parse.urlencode(filters)
        return get_json(f"{self.url}/api/v2/alerts?{q}")
