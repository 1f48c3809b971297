"""A mosquitto with users, an ACL and TLS listeners, on 127.0.0.1, with certificates
made by the test (openssl CLI): the secured broker of a real plant, in miniature.

Listeners:
- ``plain``: no TLS, user name and password required;
- ``tls``: TLS with a server certificate for 127.0.0.1, a client certificate required;
- ``tls_other_name``: TLS with a certificate for ``broker.plant`` only (the server name
  check must refuse it at 127.0.0.1).

Users: ``tsfleet`` may read ``fleet/#``; ``device`` may only write ``fleet/#``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tsfleet.live.broker import LocalBroker, free_port

USERS = {"tsfleet": "s3cret-ingest", "device": "dev-pass"}
ACL = """user tsfleet
topic read fleet/#

user device
topic write fleet/#
"""


def have_tools() -> str | None:
    """Why the secure tests cannot run here, or None."""
    for tool in ("openssl", "mosquitto_passwd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install openssl mosquitto)"
    return None


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, server certificates (127.0.0.1; broker.plant), a client certificate, and
    a second CA that signed none of them. EC P-256 keys: quick to make."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # mosquitto started as root reads them as the user mosquitto
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for ca in ("ca", "other-ca"):
        _run("openssl", "req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
             "-days", "2", "-subj", f"/CN=tsfleet test {ca}", cwd=folder)
    for name, san in (("server", "IP:127.0.0.1"), ("server-other", "DNS:broker.plant"),
                      ("client", None)):
        _run("openssl", "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=folder)
        ext = folder / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n" if san else "extendedKeyUsage=clientAuth\n")
        _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
             "-extfile", ext.name, cwd=folder)
    for p in folder.iterdir():
        p.chmod(0o644)  # mosquitto started as root reads them as the user mosquitto
    return {p.stem.replace("-", "_") + ("_key" if p.suffix == ".key" else ""): p
            for p in folder.iterdir() if p.suffix in (".crt", ".key")}


class SecureBroker(LocalBroker):
    """:class:`LocalBroker` with the listeners and users described above."""

    def __init__(self, certs: dict[str, Path], *, extra: str = ""):
        super().__init__()
        self.certs = certs
        self.tls_port, self.other_port = free_port(), free_port()
        if os.geteuid() == 0:
            self.dir.chmod(0o777)
        pw = self.dir / "passwords"
        for i, (user, password) in enumerate(USERS.items()):
            subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(pw),
                            user, password], check=True, capture_output=True, timeout=30)
        acl = self.dir / "acl"
        acl.write_text(ACL)
        for p in (pw, acl):
            p.chmod(0o644)
        self.config.write_text("\n".join([
            "per_listener_settings false", "allow_anonymous false",
            f"password_file {pw}", f"acl_file {acl}",
            "max_queued_messages 0", "max_inflight_messages 0", "persistence true",
            f"persistence_location {self.dir}/", "autosave_interval 1", "log_dest stderr",
            "log_type all",
            f"listener {self.port} 127.0.0.1",
            f"listener {self.tls_port} 127.0.0.1", f"cafile {certs['ca']}",
            f"certfile {certs['server']}", f"keyfile {certs['server_key']}",
            "require_certificate true",
            f"listener {self.other_port} 127.0.0.1", f"cafile {certs['ca']}",
            f"certfile {certs['server_other']}", f"keyfile {certs['server_other_key']}",
            extra]) + "\n")


def temp_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="tsfleet-certs-"))
