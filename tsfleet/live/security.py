"""Broker security of ``tsfleet serve``: who we are to the broker and how we reach it.

A :class:`MqttSecurity` holds the user name, where the password comes from (a
file or an environment variable: never the command line, where ``ps`` shows
it to every user), and the TLS settings: the CA file that signs the broker's
certificate (the system's CAs when none is given), an optional client
certificate and key, and the server name check (on by default; turning it
off keeps the chain check). ``mqtts://host:port`` turns TLS on.

Everything is read and checked before the server binds anything, so a wrong
path or a missing variable is a one-line error at start, not a silent
reconnect loop.

>>> parse_broker("mqtts://broker.plant:8884")
('broker.plant', 8884, True)
>>> parse_broker("127.0.0.1")
('127.0.0.1', 1883, False)
>>> parse_broker("mqtts://10.0.0.5")
('10.0.0.5', 8883, True)
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from tsfleet.errors import InvalidParameter

#: IANA ports of MQTT and MQTT over TLS.
MQTT_PORT, MQTTS_PORT = 1883, 8883


def parse_broker(text: str) -> tuple[str, int, bool]:
    """``mqtt://host[:port]``, ``mqtts://host[:port]`` or ``host[:port]`` ->
    (host, port, tls). The port defaults to 1883, or 8883 with TLS."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "mqtt", text
    scheme = scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl", "tls"):
        raise InvalidParameter(f"expected mqtt://host:port or mqtts://host:port, got {text!r}")
    tls = scheme in ("mqtts", "ssl", "tls")
    rest = rest.rstrip("/")
    if rest.startswith("["):  # [ipv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    try:
        port = int(port_text) if port_text else (MQTTS_PORT if tls else MQTT_PORT)
    except ValueError:
        raise InvalidParameter(f"expected host:port, got {text!r}") from None
    if not 0 < port < 65536:
        raise InvalidParameter(f"a port is within 1..65535, got {port} in {text!r}")
    return host or "127.0.0.1", port, tls


@dataclass(frozen=True)
class MqttSecurity:
    """Credentials and TLS settings for the MQTT connection (all optional)."""

    username: str | None = None
    password_file: str | None = None    # first line of the file is the password
    password_env: str | None = None     # name of an environment variable holding it
    tls: bool = False                   # also turned on by mqtts:// or any file below
    ca_file: str | None = None          # PEM: the CA(s) that sign the broker's certificate
    cert_file: str | None = None        # PEM: client certificate (brokers that require one)
    key_file: str | None = None         # PEM: its private key (default: inside cert_file)
    check_hostname: bool = True         # the broker's certificate must name the host

    @property
    def uses_tls(self) -> bool:
        return self.tls or any((self.ca_file, self.cert_file, self.key_file))

    def password(self) -> str | None:
        """The password, read from its file or variable (None without one)."""
        if self.password_file and self.password_env:
            raise InvalidParameter("give the MQTT password by a file or by an environment "
                                   "variable, not both")
        if self.password_file:
            try:
                lines = Path(self.password_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InvalidParameter(f"cannot read the MQTT password file "
                                       f"{self.password_file}: {exc.strerror}") from None
            if not lines or not lines[0]:
                raise InvalidParameter(f"the MQTT password file {self.password_file} is empty")
            return lines[0]
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise InvalidParameter(f"the environment variable {self.password_env} (MQTT "
                                       f"password) is not set")
            return value
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client's TLS context (None without TLS); every file is loaded now."""
        if not self.uses_tls:
            return None
        for label, path in (("CA", self.ca_file), ("client certificate", self.cert_file),
                            ("client key", self.key_file)):
            if path and not Path(path).is_file():
                raise InvalidParameter(f"MQTT TLS {label} file {path} does not exist")
        if self.key_file and not self.cert_file:
            raise InvalidParameter("an MQTT client key needs its certificate (--mqtt-cert)")
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cert_file:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidParameter(f"MQTT TLS files cannot be used: {exc}") from None
        ctx.check_hostname = self.check_hostname
        return ctx

    def apply(self, client) -> None:
        """Set the credentials and TLS context on a paho client."""
        password = self.password()
        if password is not None and not self.username:
            raise InvalidParameter("an MQTT password needs a user name (--mqtt-username)")
        if self.username:
            client.username_pw_set(self.username, password)
        ctx = self.ssl_context()
        if ctx is not None:
            client.tls_set_context(ctx)

    def describe(self) -> str:
        """One line for the start-up log (never the password)."""
        parts = [f"user {self.username}" if self.username else "anonymous"]
        if self.uses_tls:
            parts.append("TLS" + ("" if self.check_hostname else " (server name not checked)")
                         + (" with client certificate" if self.cert_file else ""))
        return ", ".join(parts)


def describe_connect_error(exc: BaseException | None, host: str, port: int,
                           tls: bool = False) -> str:
    """Why a TCP/TLS connection to the broker failed, in one line with a hint."""
    where = f"{host}:{port}"
    if tls and isinstance(exc, ConnectionResetError):
        return (f"TLS failure with {where}: the connection was reset during the handshake "
                f"(is the port a TLS listener?)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS failure with {where}: the broker's certificate was not accepted "
                f"({exc.verify_message or exc.reason}); check --mqtt-ca and the host name")
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure with {where}: {exc.reason or exc} (is the port a TLS listener?)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused: no broker listens there"
    if isinstance(exc, TimeoutError | ConnectionResetError) or exc is None:
        return f"cannot reach {where}: {exc or 'no answer'}"
    return f"cannot connect to {where}: {exc}"
