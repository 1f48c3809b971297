#!/usr/bin/env bash
# The test command: the full suite with coverage (>= 90% overall), the
# per-module coverage gates, and pytest_results.json from pytest-json-report.
# Two pytest-xdist workers, one per core (each test file stays on one worker, so
# module fixtures are built once); TSFLEET_TEST_WORKERS=0 runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
WORKERS=${TSFLEET_TEST_WORKERS:-2}
if [ "$WORKERS" = 0 ]; then XDIST=(); else XDIST=(-n "$WORKERS" --dist loadfile); fi
"$PY" -m pytest -q -p no:randomly "${XDIST[@]}" \
    --cov=tsfleet --cov-report=term:skip-covered --cov-fail-under=90 \
    --json-report --json-report-file=pytest_results.json --json-report-omit=log "$@"
"$PY" scripts/coverage_gates.py
