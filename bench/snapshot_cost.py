"""What ``serve --snapshot-every 5m`` costs: CPU per snapshot of a 10,000-device store.

    PYTHONPATH=. python bench/snapshot_cost.py                         # 5M readings
    PYTHONPATH=. python bench/snapshot_cost.py --readings 46000000     # 10,000 devices x 90 days

Builds a store as bench/share.py does (hourly readings of 10,000 devices), then takes
``--runs`` snapshots with ``Fleet.snapshot`` (what the scheduler calls) and measures the
CPU time of the process (every DuckDB thread) for each. Printed: wall and CPU seconds
per snapshot, and the average share of one core at a snapshot every ``--every``
seconds (target: < 20%), against a baseline from the same run: a plain copy of the
checkpointed file (fast, but not consistent while ingest writes). The load average is
printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from share import build_store  # noqa: E402


def measured(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readings", type=int, default=5_000_000, help="readings in the store")
    p.add_argument("--devices", type=int, default=10_000, help="devices")
    p.add_argument("--metrics", type=int, default=5, help="metrics per device")
    p.add_argument("--runs", type=int, default=3, help="snapshots measured")
    p.add_argument("--every", type=float, default=300.0, help="snapshot interval, seconds")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsfleet-bench-snapcost-"))
    try:
        store = work / "plant.duckdb"
        fleet = build_store(store, args.readings, args.devices, args.metrics)
        n = fleet.query("select count(*) as n from readings")[0]["n"]
        snaps = [measured(lambda: fleet.snapshot(work / "share.duckdb"))
                 for _ in range(args.runs)]
        copies = [measured(lambda: shutil.copyfile(store, work / "copy.duckdb"))
                  for _ in range(args.runs)]
        fleet.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = statistics.median(s[0] for s in snaps)
    cpu = statistics.median(s[1] for s in snaps)
    copy_cpu = statistics.median(c[1] for c in copies)
    load = os.getloadavg()
    print(f"snapshot of {n:,} readings ({args.devices:,} devices): wall {wall:.1f} s, "
          f"cpu {cpu:.1f} s (median of {args.runs}); every {args.every:g} s that is "
          f"{100 * cpu / args.every:.1f}% of one core on average (target < 20%)")
    print(f"baseline, a plain file copy: cpu {copy_cpu:.2f} s "
          f"({100 * copy_cpu / args.every:.2f}% of a core); "
          f"ratio {cpu / max(copy_cpu, 1e-3):.0f}x; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
