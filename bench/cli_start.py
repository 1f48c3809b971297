"""Start-up time of the CLI (issue 21): ``tsfleet --help`` and the light commands.

    python bench/cli_start.py                     # builds a small demo store, 7 runs each
    python bench/cli_start.py --db demo.duckdb --runs 15

Each command runs as a fresh process (``python -m tsfleet ...``), as a person's shell
runs it. Printed per command: the median and worst wall time, and the median CPU time
(user + system of the child, which a busy machine does not inflate the way it inflates
wall time). Baseline, from the same run: the bare interpreter (``python -c pass``), so
the ratio is what tsfleet adds on top of Python itself. Targets: ``--help`` < 0.3 s,
light commands < 0.5 s. The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIGHT = [
    ("--help", ["--help"], 0.3),
    ("info", ["info"], 0.5),
    ("sql", ["sql", "select count(*) from devices"], 0.5),
    ("device", ["device", "{device}"], 0.5),
    ("alerts list", ["alerts", "list"], 0.5),
    ("workorders --no-plan", ["workorders", "--no-plan"], 0.5),
]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="an existing store (default: a 60-device demo made here)")
    ap.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = str(Path(tmp) / "demo.duckdb")
            subprocess.run([py, "-m", "tsfleet", "demo", "--devices", "60", "--days", "20",
                            "--db", db], check=True, stdout=subprocess.DEVNULL)
        import duckdb

        with duckdb.connect(db, read_only=True) as con:
            device = con.execute("select min(device_id) from devices").fetchone()[0]
        base = [timed([py, "-c", "pass"]) for _ in range(args.runs)]
        b_wall = statistics.median(w for w, _ in base)
        b_cpu = statistics.median(c for _, c in base)
        print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each; "
              f"baseline python -c pass: wall {b_wall:.3f} s, cpu {b_cpu:.3f} s")
        print(f"{'command':<22} {'wall p50':>9} {'wall max':>9} {'cpu p50':>8} "
              f"{'x python':>9} {'target':>7}  verdict (on cpu)")
        for name, argv, target in LIGHT:
            argv = [a.replace("{device}", device) for a in argv]
            extra = [] if argv == ["--help"] else ["--db", db]
            runs = [timed([py, "-m", "tsfleet", *extra, *argv]) for _ in range(args.runs)]
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"{name:<22} {wall:>8.3f}s {max(w for w, _ in runs):>8.3f}s {cpu:>7.3f}s "
                  f"{cpu / b_cpu if b_cpu else float('nan'):>8.1f}x {target:>6.1f}s  "
                  f"{'met' if cpu < target else 'MISSED'}")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
