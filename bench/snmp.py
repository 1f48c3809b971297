"""SNMP polling benchmark: 1,000 agents polled in <= 30 s (concurrent, bounded).

    PYTHONPATH=. python bench/snmp.py                       # 1,000 agents on 10 snmpd, 100 at once
    PYTHONPATH=. python bench/snmp.py --agents 2000 --instances 20 --concurrency 200

Starts ``--instances`` real net-snmp ``snmpd`` processes on 127.0.0.1 (Debian's
``snmpd``), each on its own UDP port, and declares ``--agents`` agents spread evenly
over them: with the defaults, 100 declared agents (100 gateway ids) share each
address:port, so every snmpd answers 100 agents' requests. Each agent is polled exactly
as ``tsfleet snmp-poll`` polls it (:class:`tsfleet.live.snmp.Poller`: a GET of sysUpTime
and the CPU tick counters, one GETBULK of the IF-MIB and HOST-RESOURCES columns,
continued where a column is longer). Two polls run, so the second has counter deltas
to compute, and the figure is the second one's wall time. The baseline, in the same run,
is the same poll serially (concurrency 1) over ``--serial-agents`` agents (default
all of them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tsfleet.live.snmp import Poller


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_agents(n: int, folder: Path) -> tuple[list[subprocess.Popen], list[int]]:
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    if not os.path.exists(snmpd):
        sys.exit("snmpd is not installed (apt-get install snmpd)")
    procs, ports = [], []
    for i in range(n):
        port = free_udp_port()
        d = folder / f"snmpd-{i}"
        d.mkdir()
        (d / "snmpd.conf").write_text(f"agentAddress udp:127.0.0.1:{port}\n"
                                      "rocommunity public 127.0.0.1\n")
        procs.append(subprocess.Popen(
            [snmpd, "-f", "-Lo", "-C", "-c", str(d / "snmpd.conf"), f"-p{d}/pid",
             f"--persistentDir={d}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    time.sleep(1.5)
    dead = [i for i, p in enumerate(procs) if p.poll() is not None]
    if dead:
        sys.exit(f"snmpd instances {dead} did not start")
    return procs, ports


def timed_poll(agents: list[dict], concurrency: int, timeout: float, warm: bool = True
               ) -> tuple[float, float, list[dict], int]:
    """(wall s, CPU s, rows, agents whose tables went unanswered) of the second of two
    polls (the first warms the counters)."""
    poller = Poller(agents, timeout=timeout, retries=1, concurrency=concurrency)
    if warm:
        asyncio.run(poller.poll())
    w0, c0 = time.perf_counter(), time.process_time()
    before = poller.n_incomplete
    rows = asyncio.run(poller.poll())
    return (time.perf_counter() - w0, time.process_time() - c0, rows,
            poller.n_incomplete - before)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000, help="declared agents")
    ap.add_argument("--instances", type=int, default=10, help="snmpd processes on loopback")
    ap.add_argument("--concurrency", type=int, default=100, help="agents polled at once")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    ap.add_argument("--serial-agents", type=int, default=None,
                    help="agents of the serial baseline (default: all)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        procs, ports = start_agents(args.instances, Path(tmp))
        try:
            agents = [{"gateway_id": f"gw-{i:05d}",
                       "address": f"127.0.0.1:{ports[i % len(ports)]}",
                       "community": "public"} for i in range(args.agents)]
            load0 = os.getloadavg()[0]
            wall, cpu, rows, incomplete = timed_poll(agents, args.concurrency, args.timeout)
            load1 = os.getloadavg()[0]
            n_serial = min(args.serial_agents or args.agents, args.agents)
            s_wall, s_cpu, s_rows, s_incomplete = timed_poll(agents[:n_serial], 1, args.timeout)
            load2 = os.getloadavg()[0]
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(10)
    up = sum(r["is_up"] for r in rows)
    deltas = sum(r.get("n_in_octets") is not None for r in rows)
    print(f"SNMP v2c: {args.agents:,} declared agents on {args.instances} snmpd instances "
          f"(127.0.0.1, {args.agents // args.instances} agents per address:port), "
          f"concurrency {args.concurrency}:")
    print(f"  polled {len(rows):,} agents in {wall:.1f} s wall (target <= 30 s), {up:,} up, "
          f"{deltas:,} with interface counter deltas ({incomplete} answered the GET but "
          f"not the table requests in time); client CPU {cpu:.1f} s "
          f"({cpu / len(rows) * 1000:.1f} ms per agent)")
    print(f"  load average during the run: {(load0 + load1) / 2:.1f} on {os.cpu_count()} cores")
    scaled = s_wall * args.agents / n_serial
    print(f"baseline: serial poll (concurrency 1) of {n_serial:,} agents: {s_wall:.1f} s wall, "
          f"{sum(r['is_up'] for r in s_rows):,} up ({s_incomplete} tables unanswered), "
          f"client CPU {s_cpu:.1f} s, load "
          f"{(load1 + load2) / 2:.1f}" + (f" (x{args.agents / n_serial:g}: {scaled:.1f} s for "
                                          f"{args.agents:,})" if n_serial < args.agents else ""))
    print(f"ratio serial / concurrent wall time for {args.agents:,} agents: "
          f"{scaled / wall:.1f}x")


if __name__ == "__main__":
    main()
