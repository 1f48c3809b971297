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
    auth_key_env = "AP_AUTH_KEY"         # the keys: from the environment ...
    priv_key_file = "/etc/tsfleet/ap.priv"   # ... or from a file (its first line)
    clients_oid = "1.3.6.1.4.1.9.9.273.1.1.2.1.1"   # optional: associated clients
    clients = "sum"                      # sum the values (default: count the rows)

One poll asks every agent, concurrently (at most ``concurrency`` at once), in two
requests: a GET of sysUpTime and UCD-SNMP's raw CPU counters, and one GETBULK of the
IF-MIB and HOST-RESOURCES columns (continued for a column longer than one response):

- ``uptime_s`` (sysUpTime), ``latency_ms`` (the GET's round trip);
- ``n_in_octets``, ``n_out_octets`` (ifHCInOctets/ifHCOutOctets, else the 32-bit
  ifInOctets/ifOutOctets), ``n_in_errors``, ``n_out_errors`` (ifInErrors, ifOutErrors):
  each counter's increase since the agent's previous poll, modulo 2**32 or 2**64 (a
  wrapped counter), summed over the interfaces that are not software loopback (ifType
  24). No previous poll, or a lower sysUpTime (the agent restarted: counters restart
  too), gives null;
- ``cpu_pct``: the mean ``hrProcessorLoad``, else from UCD-SNMP's ``ssCpuRaw*`` tick
  counters between two polls (busy ticks over all ticks);
- ``memory_pct``: the RAM entry of ``hrStorageTable`` (used / size);
- ``n_connected``: the associated clients under ``clients_oid`` (a table counted, or its
  values summed), where declared.

An agent that does not answer within ``timeout`` (after ``retries``) is a ``gateway_stats``
row with ``is_up = false``: the network views count its down time. The raw counters of
each poll are what the next one subtracts: :class:`Poller` keeps them, and ``tsfleet
snmp-poll`` keeps them between runs in the table ``snmp_counters``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from tsfleet.errors import InvalidParameter
from tsfleet.live.mqtt import parse_address
from tsfleet.store import transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

log = logging.getLogger("tsfleet.live")
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_TYPE = "1.3.6.1.2.1.2.2.1.3"
IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10"
IF_IN_ERRORS = "1.3.6.1.2.1.2.2.1.14"
IF_OUT_OCTETS = "1.3.6.1.2.1.2.2.1.16"
IF_OUT_ERRORS = "1.3.6.1.2.1.2.2.1.20"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"
#: UCD-SNMP-MIB ssCpuRaw*: user, nice, system, idle, wait, kernel, interrupt, softIRQ, steal
SS_CPU_RAW = {"user": 50, "nice": 51, "system": 52, "idle": 53, "wait": 54, "kernel": 55,
              "interrupt": 56, "softirq": 61, "steal": 64}
_CPU_IDLE = ("idle", "wait")
SOFTWARE_LOOPBACK = 24
#: the table columns of the one GETBULK
COLUMNS = (IF_TYPE, IF_IN_OCTETS, IF_OUT_OCTETS, IF_IN_ERRORS, IF_OUT_ERRORS, IF_HC_IN_OCTETS,
           IF_HC_OUT_OCTETS, HR_PROCESSOR_LOAD, HR_STORAGE_TYPE, HR_STORAGE_SIZE,
           HR_STORAGE_USED)
#: interface counters: name -> (64-bit column, 32-bit column)
IF_COUNTERS = {"in_octets": (IF_HC_IN_OCTETS, IF_IN_OCTETS),
               "out_octets": (IF_HC_OUT_OCTETS, IF_OUT_OCTETS),
               "in_errors": (None, IF_IN_ERRORS), "out_errors": (None, IF_OUT_ERRORS)}
MAX_REPETITIONS = 8


def _secret(agent: dict, key: str, base: Path) -> str | None:
    """An SNMPv3 key from ``<key>_env`` (an environment variable) or ``<key>_file``
    (the first line of a file, relative to the targets file), never from the file itself."""
    env, path = agent.get(f"{key}_env"), agent.get(f"{key}_file")
    if env and path:
        raise InvalidParameter(f"agent {agent['gateway_id']}: give {key}_env or {key}_file, "
                               "not both")
    if env:
        if env not in os.environ:
            raise InvalidParameter(f"agent {agent['gateway_id']}: the environment variable "
                                   f"{env} is not set")
        return os.environ[env]
    if path:
        try:
            lines = (base / path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidParameter(f"agent {agent['gateway_id']}: cannot read {key}_file: "
                                   f"{exc}") from None
        if not lines or not lines[0].strip():
            raise InvalidParameter(f"agent {agent['gateway_id']}: {key}_file {path} is empty")
        return lines[0].strip()
    return None


def load_agents(path: str | Path) -> list[dict]:
    """The agents of a targets file, with their v3 keys resolved (``auth_key``,
    ``priv_key``); :class:`InvalidParameter` names what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameter(f"SNMP targets {path}: cannot read it: {exc}") from None
    agents = data.get("agent") if isinstance(data, dict) else None
    if not isinstance(agents, list) or not agents:
        raise InvalidParameter(f"SNMP targets {path}: expected [[agent]] entries")
    out, seen = [], set()
    for i, a in enumerate(agents):
        if not isinstance(a, dict) or not a.get("gateway_id") or not a.get("address"):
            raise InvalidParameter(f"SNMP targets {path}: agent {i + 1} needs gateway_id and "
                                   "address")
        if a["gateway_id"] in seen:
            raise InvalidParameter(f"SNMP targets {path}: agent {a['gateway_id']} is declared "
                                   "twice")
        seen.add(a["gateway_id"])
        if bool(a.get("community")) == bool(a.get("user")):
            raise InvalidParameter(f"SNMP targets {path}: agent {a['gateway_id']} needs either "
                                   "community (v2c) or user (v3)")
        if a.get("clients", "count") not in ("count", "sum"):
            raise InvalidParameter(f"SNMP targets {path}: agent {a['gateway_id']}: clients must "
                                   f"be count or sum, got {a['clients']!r}")
        try:
            parse_address(str(a["address"]), 161)
            agent = dict(a)
            if a.get("user"):
                agent["auth_key"] = _secret(a, "auth_key", path.parent)
                agent["priv_key"] = _secret(a, "priv_key", path.parent)
        except InvalidParameter as exc:
            raise InvalidParameter(f"SNMP targets {path}: {exc}") from None
        out.append(agent)
    return out


def _auth(h, agent: dict):
    if agent.get("community"):
        return h.CommunityData(agent["community"], mpModel=1)
    auth = {"SHA": h.usmHMACSHAAuthProtocol, "SHA256": h.usmHMAC192SHA256AuthProtocol,
            "MD5": h.usmHMACMD5AuthProtocol}
    priv = {"AES": h.usmAesCfb128Protocol, "AES256": h.usmAesCfb256Protocol,
            "DES": h.usmDESPrivProtocol}
    auth_key, priv_key = agent.get("auth_key"), agent.get("priv_key")
    return h.UsmUserData(
        agent["user"], auth_key, priv_key,
        authProtocol=auth[agent.get("auth_protocol", "SHA")] if auth_key
        else h.usmNoAuthProtocol,
        privProtocol=priv[agent.get("priv_protocol", "AES")] if priv_key
        else h.usmNoPrivProtocol)


def counter_delta(prev: int, cur: int, bits: int) -> int:
    """A counter's increase between two reads of one agent run: modulo ``2**bits``
    (a counter that passed its maximum starts again at 0; RFC 2578).

    >>> counter_delta(4294967000, 200, 32)
    496
    """
    return (cur - prev) % (1 << bits)


def _value(v) -> int | None:
    """An SNMP integer value, or None for noSuchObject/noSuchInstance/endOfMibView."""
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class Poller:
    """Polls a set of agents; keeps each agent's raw counters between polls (``state``:
    gateway id -> counter -> (value, bits, uptime in centiseconds, unix time))."""

    def __init__(self, agents: list[dict], *, timeout: float = 2.0, retries: int = 1,
                 concurrency: int = 100, state: dict | None = None):
        if concurrency < 1:
            raise InvalidParameter(f"concurrency must be at least 1, got {concurrency}")
        self.agents, self.timeout, self.retries = agents, timeout, retries
        self.concurrency = concurrency
        self.state: dict[str, dict[str, tuple[int, int, int | None, float]]] = state or {}
        #: agents that answered the GET but not the table requests, since created
        self.n_incomplete = 0

    async def poll(self) -> list[dict]:
        """One ``gateway_stats`` row per agent (bounded concurrency)."""
        try:
            import pysnmp.hlapi.v3arch.asyncio as h
        except ImportError as exc:
            raise InvalidParameter("SNMP polling needs pysnmp (pip install 'tsfleet[snmp]'): "
                                   f"{exc}") from None
        engine = h.SnmpEngine()
        gate = asyncio.Semaphore(self.concurrency)
        cache: dict[str, object] = {}

        def vb(oid: str):
            """A request variable, resolved once per engine (pysnmp resolves each one
            against its MIB view: a third of the client's CPU when not reused)."""
            if oid not in cache:
                cache[oid] = h.ObjectType(h.ObjectIdentity(oid))
            return cache[oid]
        self._vb = vb

        async def one(agent: dict) -> dict:
            async with gate:
                try:
                    return await self._poll_agent(h, engine, agent)
                except Exception:  # noqa: BLE001 - an unreachable or broken agent is down
                    return {"gateway_id": agent["gateway_id"], "observed_at": time.time(),
                            "is_up": False}

        try:
            return list(await asyncio.gather(*(one(a) for a in self.agents)))
        finally:
            engine.close_dispatcher()

    async def _poll_agent(self, h, engine, agent: dict) -> dict:
        host, port = parse_address(str(agent["address"]), 161)
        now = time.time()
        row = {"gateway_id": agent["gateway_id"], "observed_at": now, "is_up": False}
        auth = _auth(h, agent)
        target = await h.UdpTransportTarget.create((host, port), timeout=self.timeout,
                                                   retries=self.retries)
        ctx = h.ContextData()
        scalars = [SYS_UPTIME] + [f"1.3.6.1.4.1.2021.11.{n}.0" for n in SS_CPU_RAW.values()]
        t0 = time.perf_counter()
        err, status, _, binds = await h.get_cmd(
            engine, auth, target, ctx, *[self._vb(o) for o in scalars],
            lookupMib=False)
        if err or status or not binds or _value(binds[0][1]) is None:
            return row
        uptime_cs = _value(binds[0][1])
        row.update(is_up=True, latency_ms=(time.perf_counter() - t0) * 1000,
                   uptime_s=uptime_cs / 100.0)
        cpu_raw = {name: _value(v) for name, (_, v) in zip(SS_CPU_RAW, binds[1:], strict=False)}
        try:
            cols = await _columns(h, engine, auth, target, ctx, COLUMNS, self._vb)
        except IncompleteRead as exc:  # up (it answered), but its counters are unknown
            log.info("live: SNMP agent %s: tables not read (%s)", agent["gateway_id"], exc)
            self.n_incomplete += 1
            return row  # its previous counters stay for the next poll
        counters = _interface_counters(cols)
        if all(v is not None for v in cpu_raw.values()) and cpu_raw:
            idle = sum(cpu_raw[k] for k in _CPU_IDLE)
            counters["cpu.busy"] = (sum(cpu_raw.values()) - idle, 32)
            counters["cpu.total"] = (sum(cpu_raw.values()), 32)
        loads = [v for v in (_value(x) for x in cols[HR_PROCESSOR_LOAD].values()) if v is not None]
        ram = [i for i, v in cols[HR_STORAGE_TYPE].items() if str(v) == HR_STORAGE_RAM]
        if ram:
            size = _value(cols[HR_STORAGE_SIZE].get(ram[0]))
            used = _value(cols[HR_STORAGE_USED].get(ram[0]))
            if size and used is not None and 0 <= used <= size:
                row["memory_pct"] = 100.0 * used / size
        if agent.get("clients_oid"):
            oid = str(agent["clients_oid"]).strip(".")
            try:
                found = (await _columns(h, engine, auth, target, ctx, (oid,), self._vb))[oid]
            except IncompleteRead:
                found = None
            if found is not None:
                values = [v for v in (_value(x) for x in found.values()) if v is not None]
                row["n_connected"] = sum(values) if agent.get("clients") == "sum" \
                    else len(found)
        self._deltas(row, counters, uptime_cs, now)
        if loads:
            row["cpu_pct"] = sum(loads) / len(loads)
        return row

    def _deltas(self, row: dict, counters: dict[str, tuple[int, int]], uptime_cs: int,
                now: float) -> None:
        """The interface and CPU counters' increase since this agent's previous poll."""
        prev = self.state.get(row["gateway_id"], {})
        self.state[row["gateway_id"]] = {k: (v, bits, uptime_cs, now)
                                         for k, (v, bits) in counters.items()}
        deltas: dict[str, int] = {}
        for key, (value, bits) in counters.items():
            p = prev.get(key)
            if p is None or p[1] != bits or p[2] is None or uptime_cs < p[2]:
                continue  # new, changed width or restarted: no increase to tell
            deltas[key] = counter_delta(p[0], value, bits)
        for name in IF_COUNTERS:
            parts = [v for k, v in deltas.items() if k.startswith("if.") and
                     k.endswith("." + name)]
            row[f"n_{name}"] = sum(parts) if parts else None
        busy, total = deltas.get("cpu.busy"), deltas.get("cpu.total")
        if busy is not None and total and busy <= total:
            row["cpu_pct"] = 100.0 * busy / total

    # -- state kept in the store (tsfleet snmp-poll) --------------------------------------
    #: The raw counters of the agents (parameter: their gateway ids), as ``load_state``
    #: reads them (``tsfleet snmp-poll`` asks serve the same query when serve holds the store).
    STATE_SQL = ("select gateway_id, counter, value::varchar as value, bits, uptime_cs, "
                 "epoch(observed_at) as observed_at from snmp_counters "
                 "where gateway_id in (select unnest(?)) order by gateway_id, counter")

    def load_state(self, fleet: Fleet) -> None:
        """The raw counters of the previous poll, from ``snmp_counters``."""
        self.set_state(fleet.con.execute(self.STATE_SQL, [self.gateway_ids()]).fetchall())

    def gateway_ids(self) -> list[str]:
        return [a["gateway_id"] for a in self.agents]

    def set_state(self, rows) -> None:
        """The previous poll's counters from rows of :attr:`STATE_SQL` (tuples or lists)."""
        for gw, counter, value, bits, uptime, at in rows:
            self.state.setdefault(gw, {})[counter] = (int(value), bits, uptime, at)

    def save_state(self, fleet: Fleet) -> int:
        """Replace the agents' rows of ``snmp_counters`` by this poll's raw counters."""
        rows = [(gw, k, str(v), bits, up, at) for gw, cs in self.state.items()
                for k, (v, bits, up, at) in cs.items()]
        table = pa.table({
            "gateway_id": pa.array([r[0] for r in rows], pa.string()),
            "counter": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()),
            "bits": pa.array([r[3] for r in rows], pa.int32()),
            "uptime_cs": pa.array([r[4] for r in rows], pa.int64()),
            "observed_at": pa.array([r[5] for r in rows], pa.float64())})
        con = fleet.con
        con.register("_snmp_state", table)
        try:
            with transaction(con):
                con.execute("delete from snmp_counters where gateway_id in "
                            "(select distinct gateway_id from _snmp_state)")
                con.execute("insert into snmp_counters select gateway_id, counter, "
                            "value::hugeint, bits, uptime_cs, to_timestamp(observed_at)::timestamp "
                            "from _snmp_state")
        finally:
            con.unregister("_snmp_state")
        return len(rows)


class IncompleteRead(Exception):
    """A table request of an agent that answered its GET went unanswered or failed."""


async def _columns(h, engine, auth, target, ctx, columns, vb) -> dict[str, dict[str, object]]:
    """Table columns -> {row index: value}, by one GETBULK of all the columns, then
    (for a column longer than that response) GETBULKs of that column until it ends;
    :class:`IncompleteRead` when a request fails (a partial table would be wrong)."""
    out: dict[str, dict[str, object]] = {c: {} for c in columns}
    todo = {c: c for c in columns}  # column -> the last OID read in it
    while todo:
        cols = list(todo)
        err, status, _, binds = await h.bulk_cmd(
            engine, auth, target, ctx, 0, MAX_REPETITIONS,
            *[vb(todo[c]) if todo[c] == c else h.ObjectType(h.ObjectIdentity(todo[c]))
              for c in cols], lookupMib=False)
        if err or status:
            raise IncompleteRead(str(err or status.prettyPrint()))
        ended = set()
        for j, (name, value) in enumerate(binds):
            col = cols[j % len(cols)]
            oid = str(name)
            if col in ended or not oid.startswith(col + ".") or _value(value) is None and \
                    value.__class__.__name__ == "EndOfMibView":
                ended.add(col)
                continue
            out[col][oid[len(col) + 1:]] = value
            todo[col] = oid
        todo = {c: o for c, o in todo.items() if c not in ended and binds}
        if len(binds) < len(cols):  # an empty answer: nothing more to read
            break
    return out


def _interface_counters(cols: dict[str, dict[str, object]]) -> dict[str, tuple[int, int]]:
    """``if.<index>.<counter>`` -> (value, bits) of the interfaces that are not loopback:
    the 64-bit (HC) counter where the agent has it, else the 32-bit one."""
    out = {}
    for index, kind in cols[IF_TYPE].items():
        if _value(kind) == SOFTWARE_LOOPBACK:
            continue
        for name, (hc, low) in IF_COUNTERS.items():
            v = _value(cols[hc].get(index)) if hc else None
            if v is not None:
                out[f"if.{index}.{name}"] = (v, 64)
                continue
            v = _value(cols[low].get(index))
            if v is not None:
                out[f"if.{index}.{name}"] = (v, 32)
    return out


async def poll(agents: list[dict], *, timeout: float = 2.0, retries: int = 1,
               concurrency: int = 100) -> list[dict]:
    """One ``gateway_stats`` row per agent (no previous counters: no deltas)."""
    return await Poller(agents, timeout=timeout, retries=retries,
                        concurrency=concurrency).poll()


async def poll_every(poller: Poller, every_s: float, submit, stop: asyncio.Event) -> None:
    """``tsfleet serve --snmp-targets``: poll every ``every_s`` seconds until ``stop``,
    handing each poll's rows to ``submit`` (the writer's, called off the event loop: it
    may block on back-pressure) as one envelope. A poll that fails is logged, never fatal."""
    from tsfleet.live.decoded import Decoded
    from tsfleet.live.writer import Envelope

    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = time.monotonic()
        try:
            rows = await poller.poll()
            n_down = sum(not r["is_up"] for r in rows)
            env = Envelope("snmp", "snmp", b"", time.time(),
                           decoded=Decoded("snmp", facts={"gateway_stats": rows}))
            await loop.run_in_executor(None, submit, env)
            log.info("live: SNMP polled %d agents in %.1f s, %d down", len(rows),
                     time.monotonic() - started, n_down)
        except Exception as exc:  # noqa: BLE001 - polling must not stop the service
            log.warning("live: an SNMP poll failed: %s", exc)
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, every_s - (time.monotonic() - started)))
        except TimeoutError:
            pass
