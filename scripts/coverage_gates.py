"""Per-module coverage gates, read from ``[tool.tsfleet.coverage_gates]`` in pyproject.toml.

Run after pytest-cov has written ``.coverage``. Each gate is a glob of source
files and the minimum percentage of their statements (and branches, if
measured) that the tests must cover. Exits 1, naming the gate, when one fails.
"""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    gates = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["tsfleet"][
        "coverage_gates"]
    cov = coverage.Coverage(data_file=str(ROOT / ".coverage"))
    cov.load()
    data = cov.get_data()
    files = {str(Path(f).resolve().relative_to(ROOT)): f for f in data.measured_files()
             if Path(f).resolve().is_relative_to(ROOT)}
    failed = False
    for pattern, minimum in gates.items():
        matched = [f for rel, f in files.items() if fnmatch.fnmatch(rel, pattern)]
        if not matched:
            print(f"coverage gate {pattern}: no measured file matches", file=sys.stderr)
            failed = True
            continue
        total = covered = 0
        for f in matched:
            _, statements, _, missing, _ = cov.analysis2(f)
            total += len(statements)
            covered += len(statements) - len(missing)
        pct = 100.0 * covered / total if total else 100.0
        ok = pct + 1e-9 >= minimum
        failed |= not ok
        print(f"coverage gate {pattern:<40} {pct:6.2f}% (min {minimum}%)"
              f"{'' if ok else '  FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
