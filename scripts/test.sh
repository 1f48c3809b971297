#!/usr/bin/env bash
# The test command: the full suite with coverage (>= 90% overall), the
# per-module coverage gates, and pytest_results.json from pytest-json-report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pytest -q -p no:randomly \
    --cov=tsfleet --cov-report=term:skip-covered --cov-fail-under=90 \
    --json-report --json-report-file=pytest_results.json --json-report-omit=log "$@"
"$PY" scripts/coverage_gates.py
