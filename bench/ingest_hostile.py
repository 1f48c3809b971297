"""Hostile files: peak RSS and time of ingesting them, against a clean file of the
same rows (the baseline), each in a fresh process.

    python bench/ingest.py --hostile            # runs this (defaults: about a minute)
    python bench/ingest_hostile.py --rows 1500000 --array-rows 2400000 --keys 1000000
    python bench/ingest_hostile.py --before /work/main   # also run an older tsfleet

Cases: a CSV with one invalid UTF-8 byte in the middle and one 20 MiB field; a
JSON-lines file with one row of ``--keys`` keys; one ``.json`` array of
``--array-rows`` objects. Each prints rows read, accepted, quarantined, peak RSS
(MiB) and seconds, and the RSS ratio against the clean CSV of the same readings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import readings_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = """
import json, resource, sys, time
from tsfleet import Fleet
t = time.perf_counter()
try:
    with Fleet(sys.argv[2]) as f:
        r = f.ingest("readings", sys.argv[1])
    out = {"rows": r.n_rows, "accepted": r.n_accepted, "quarantined": r.n_quarantined,
           "reasons": dict(r.quarantined_by_reason)}
except Exception as exc:
    out = {"error": type(exc).__name__ + ": " + str(exc).splitlines()[0][:100]}
    with Fleet(sys.argv[2]) as f:  # what landed before the failure
        out["landed"] = f.query("select count(*) as n from readings")[0]["n"]
out["seconds"] = time.perf_counter() - t
out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def ingest(path: Path, tmp: Path, code_root: Path, limit_gib: float) -> dict:
    db = tmp / f"{path.stem}-{os.getpid()}-{code_root.name}.duckdb"
    env = dict(os.environ, PYTHONPATH=str(code_root))
    limit = int(limit_gib * (1 << 30))

    def cap():  # an older tsfleet may need far more: stop it rather than the machine
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    # cwd=tmp: ``python -c`` puts the working directory first on sys.path
    done = subprocess.run([sys.executable, "-c", RUN, str(path), str(db)], env=env, cwd=tmp,
                          capture_output=True, text=True, preexec_fn=cap, timeout=3600)
    db.unlink(missing_ok=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1][:100]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def write_files(tmp: Path, rows: int, array_rows: int, keys: int) -> dict[str, Path]:
    files = {}
    clean = tmp / "clean.csv"
    pacsv.write_csv(readings_table(rows), clean)
    files["clean csv (baseline)"] = clean
    data = clean.read_bytes()
    mid = data.index(b"\n", len(data) // 2) + 1
    bad = tmp / "bad_utf8_and_giant_field.csv"
    bad.write_bytes(data[:mid] + b'"dev-\xff",2026-01-01 00:00:00,battery_pct,5\n'
                    + b'"dev-1",' + b"x" * (20 << 20) + b",battery_pct,5\n" + data[mid:])
    files["csv: 1 invalid byte + 20 MiB field"] = bad
    wide = tmp / "many_keys.jsonl"
    with wide.open("w") as fh:
        fh.write(json.dumps({"device_id": "dev-1", "observed_at": "2026-01-01T00:00:00Z",
                             "metric": "battery_pct", "value": 5}) + "\n")
        fh.write('{"device_id": "dev-2", "observed_at": "2026-01-01T00:00:00Z", '
                 + ", ".join(f'"k{i}": 1' for i in range(keys)) + "}\n")
    files[f"jsonl: a row of {keys:,} keys"] = wide
    array = tmp / "array.json"
    table = readings_table(array_rows)
    with array.open("w") as fh:
        fh.write("[")
        for lo in range(0, array_rows, 200_000):
            part = table.slice(lo, 200_000).to_pylist()
            for r in part:
                r["observed_at"] = r["observed_at"].isoformat() + "Z"
            fh.write((", " if lo else "") + ", ".join(json.dumps(r) for r in part))
        fh.write("]")
    files[f"json array of {array_rows:,} rows ({array.stat().st_size / 2**20:,.0f} MiB)"] = array
    return files


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_500_000, help="rows of the CSV files")
    p.add_argument("--array-rows", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=1_000_000, help="keys of the hostile JSON line")
    p.add_argument("--before", type=Path, default=None,
                   help="a checkout of an older tsfleet to run the same files with")
    p.add_argument("--only-before", action="store_true", help="run --before only")
    p.add_argument("--limit-gib", type=float, default=6.0,
                   help="address-space cap of each ingest process")
    a = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = write_files(tmp, a.rows, a.array_rows, a.keys)
        roots = [] if a.only_before else [("now", ROOT)]
        roots += [("before", a.before.resolve())] if a.before else []
        for label, root in roots:
            base = None
            for name, path in files.items():
                r = ingest(path, tmp, root, a.limit_gib)
                if "error" in r and "rows" not in r:
                    landed = f"{r['landed']:,}" if "landed" in r else "?"
                    print(f"{label:6} {name:44} FAILED {r['error']} ({landed} rows landed, "
                          f"{r.get('rss_mib', 0):,.0f} MiB, {r.get('seconds', 0):.1f} s)")
                    continue
                base = base or r["rss_mib"]
                print(f"{label:6} {name:44} {r['rows']:>10,} rows {r['accepted']:>10,} accepted "
                      f"{r['quarantined']:>3} quarantined {r['reasons'] or ''}  "
                      f"{r['rss_mib']:>6,.0f} MiB (x{r['rss_mib'] / base:.2f} clean)  "
                      f"{r['seconds']:.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
