"""SNMP polling of gateways and access points into ``gateway_stats`` (pysnmp 7, asyncio).

Each agent is declared in a TOML (or JSON) file, one ``[[agent]]`` per gateway::

    [[agent]]
    gateway_id = "gw-north-1"
    address = "10.0.4.17:161"
    community = "public"                 # SNMP v2c

    [[agent]]
    gateway_id = "ap-boiler-2"
    address = "10.0.4.18"
    user = "tsfleet"                     # SNMP v3 (authPriv)
    auth_protocol = "SHA"                # SHA | SHA256 | MD5
    priv_protocol = "AES"                # AES | AES256 | DES
    auth_key_env = "AP_AUTH_KEY"         # keys come from the environment, never the file
    priv_key_env = "AP_PRIV_KEY"

One poll asks every agent, concurrently (at most ``concurrency`` at once), for
sysUpTime (``1.3.6.1.2.1.1.3.0``), HOST-RESOURCES ``hrProcessorLoad`` (mean over the
processors -> ``cpu_pct``) and the RAM entry of ``hrStorageTable`` (used / size ->
``memory_pct``), where present. The round trip of the sysUpTime request is
``latency_ms``. An agent that does not answer within ``timeout`` (after ``retries``)
is a ``gateway_stats`` row with ``is_up = false``: the network views count its down time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import tomllib
from pathlib import Path

from tsfleet.errors import InvalidParameter
from tsfleet.live.mqtt import parse_address

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"


def load_agents(path: str | Path) -> list[dict]:
    """The agents of a targets file; :class:`InvalidParameter` names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameter(f"SNMP targets {path}: cannot read it: {exc}") from None
    agents = data.get("agent") if isinstance(data, dict) else None
    if not isinstance(agents, list) or not agents:
        raise InvalidParameter(f"SNMP targets {path}: expected [[agent]] entries")
    for i, a in enumerate(agents):
        if not isinstance(a, dict) or not a.get("gateway_id") or not a.get("address"):
            raise InvalidParameter(f"SNMP targets {path}: agent {i + 1} needs gateway_id and "
                                   "address")
        if bool(a.get("community")) == bool(a.get("user")):
            raise InvalidParameter(f"SNMP targets {path}: agent {a['gateway_id']} needs either "
                                   "community (v2c) or user (v3)")
        for key in ("auth_key_env", "priv_key_env"):
            if a.get("user") and a.get(key) and a[key] not in os.environ:
                raise InvalidParameter(f"SNMP targets {path}: agent {a['gateway_id']}: the "
                                       f"environment variable {a[key]} is not set")
    return agents


def _auth(h, agent: dict):
    if agent.get("community"):
        return h.CommunityData(agent["community"], mpModel=1)
    auth = {"SHA": h.usmHMACSHAAuthProtocol, "SHA256": h.usmHMAC192SHA256AuthProtocol,
            "MD5": h.usmHMACMD5AuthProtocol}
    priv = {"AES": h.usmAesCfb128Protocol, "AES256": h.usmAesCfb256Protocol,
            "DES": h.usmDESPrivProtocol}
    auth_key = os.environ.get(agent.get("auth_key_env", ""), None)
    priv_key = os.environ.get(agent.get("priv_key_env", ""), None)
    return h.UsmUserData(
        agent["user"], auth_key, priv_key,
        authProtocol=auth[agent.get("auth_protocol", "SHA")] if auth_key
        else h.usmNoAuthProtocol,
        privProtocol=priv[agent.get("priv_protocol", "AES")] if priv_key
        else h.usmNoPrivProtocol)


async def _walk(h, engine, auth, target, oid: str) -> dict[str, object]:
    out = {}
    async for err, status, _, binds in h.bulk_walk_cmd(
            engine, auth, target, h.ContextData(), 0, 25, h.ObjectType(h.ObjectIdentity(oid)),
            lexicographicMode=False):
        if err or status:
            break
        for name, value in binds:
            out[str(name)[len(oid) + 1:]] = value
    return out


async def poll_agent(h, engine, agent: dict, timeout: float, retries: int) -> dict:
    host, port = parse_address(agent["address"], 161)
    now = time.time()
    row = {"gateway_id": agent["gateway_id"], "observed_at": now, "is_up": False}
    auth = _auth(h, agent)
    target = await h.UdpTransportTarget.create((host, port), timeout=timeout, retries=retries)
    t0 = time.perf_counter()
    err, status, _, binds = await h.get_cmd(engine, auth, target, h.ContextData(),
                                            h.ObjectType(h.ObjectIdentity(SYS_UPTIME)))
    if err or status or not binds:
        return row
    row.update(is_up=True, latency_ms=(time.perf_counter() - t0) * 1000)
    loads = [int(v) for v in (await _walk(h, engine, auth, target, HR_PROCESSOR_LOAD)).values()]
    if loads:
        row["cpu_pct"] = sum(loads) / len(loads)
    types = await _walk(h, engine, auth, target, HR_STORAGE_TYPE)
    ram = [i for i, v in types.items() if str(v) == HR_STORAGE_RAM]
    if ram:
        size = await _walk(h, engine, auth, target, HR_STORAGE_SIZE)
        used = await _walk(h, engine, auth, target, HR_STORAGE_USED)
        if int(size.get(ram[0], 0)) > 0:
            row["memory_pct"] = 100.0 * int(used.get(ram[0], 0)) / int(size[ram[0]])
    return row


async def poll(agents: list[dict], *, timeout: float = 2.0, retries: int = 1,
               concurrency: int = 100) -> list[dict]:
    """One ``gateway_stats`` row per agent (bounded concurrency)."""
    try:
        import pysnmp.hlapi.v3arch.asyncio as h
    except ImportError as exc:
        raise InvalidParameter("SNMP polling needs pysnmp (pip install 'tsfleet[snmp]'): "
                               f"{exc}") from None
    engine = h.SnmpEngine()
    gate = asyncio.Semaphore(concurrency)

    async def one(agent: dict) -> dict:
        async with gate:
            try:
                return await poll_agent(h, engine, agent, timeout, retries)
            except Exception:  # noqa: BLE001 - an unreachable or broken agent is down
                return {"gateway_id": agent["gateway_id"], "observed_at": time.time(),
                        "is_up": False}

    try:
        return list(await asyncio.gather(*(one(a) for a in agents)))
    finally:
        engine.close_dispatcher()
