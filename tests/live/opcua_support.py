"""A real asyncua OPC UA server for the tests and the benchmark, on 127.0.0.1 in its own
thread and event loop: Basic256Sha256 SignAndEncrypt with a self-signed certificate, and
one user with a password (or no security at all)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

NS_URI = "urn:tsfleet:test-plant"
USER, PASSWORD = "tsfleet", "s3cret-pw"


def make_certificates(folder: Path) -> dict[str, Path]:
    """Self-signed server and client certificates (DER) with their PEM keys."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    out = {}

    async def make() -> None:
        for who, uri, use in (
                ("server", "urn:tsfleet:test-server", ExtendedKeyUsageOID.SERVER_AUTH),
                ("client", "urn:tsfleet:client", ExtendedKeyUsageOID.CLIENT_AUTH)):
            key, cert = folder / f"{who}-key.pem", folder / f"{who}-cert.der"
            await setup_self_signed_certificate(key, cert, uri, "localhost", [use],
                                                {"commonName": f"tsfleet test {who}"})
            out[f"{who}_key"], out[f"{who}_cert"] = key, cert

    asyncio.run(make())
    return out


class _Users:
    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username == USER and password == PASSWORD:
            return User(role=UserRole.User)
        return None


def dv(value, t: float | None, status: int | None = None, vtype=ua.VariantType.Double):
    """A DataValue with a source (and server) timestamp at Unix seconds ``t``."""
    at = datetime.fromtimestamp(t, UTC) if t is not None else None
    v = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=at, ServerTimestamp=at)
    if status is not None:
        v.StatusCode = ua.StatusCode(status)
    return v


class UaServer:
    """An asyncua server with the folder ``Zones`` of objects ``Zone1..ZoneN``, each with
    the Double variables ``Temperature`` and ``Humidity`` and the String variable ``Label``
    (node ids ``ns=2;s=ZoneK.Name``)."""

    def __init__(self, port: int, certs: dict | None = None, *, zones: int = 2,
                 names=("Temperature", "Humidity")):
        self.port, self.certs, self.zones, self.names = port, certs, zones, names
        self.url = f"opc.tcp://127.0.0.1:{port}/tsfleet/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nodes: dict[str, object] = {}
        self.server = None

    def call(self, coro, timeout: float = 20.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, initial: dict[str, object] | None = None) -> UaServer:
        self.call(self._start(initial or {}))
        return self

    async def _start(self, initial) -> None:
        server = Server(user_manager=_Users() if self.certs else None)
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("tsfleet test plant")
        await server.set_application_uri("urn:tsfleet:test-server")
        if self.certs:
            await server.load_certificate(str(self.certs["server_cert"]))
            await server.load_private_key(str(self.certs["server_key"]))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            server.set_identity_tokens([ua.UserNameIdentityToken])
        idx = await server.register_namespace(NS_URI)
        folder = await server.nodes.objects.add_folder(ua.NodeId("Zones", idx), "Zones")
        for z in range(1, self.zones + 1):
            obj = await folder.add_object(ua.NodeId(f"Zone{z}", idx), f"Zone{z}")
            for name in self.names:
                key = f"Zone{z}.{name}"
                node = await obj.add_variable(ua.NodeId(key, idx), name, 0.0)
                if key in initial:
                    await node.write_value(initial[key])
                self.nodes[key] = node
            key = f"Zone{z}.Label"  # a String variable (a map that names it is wrong)
            self.nodes[key] = await obj.add_variable(ua.NodeId(key, idx), "Label", "ok")
            if key in initial:
                await self.nodes[key].write_value(initial[key])
        self.idx = idx
        await server.start()
        self.server = server

    def write(self, key: str, value) -> None:
        self.call(self.nodes[key].write_value(value))

    def write_many(self, pairs) -> None:
        async def go():
            for key, value in pairs:
                await self.nodes[key].write_value(value)
        self.call(go())

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
            self.server = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
