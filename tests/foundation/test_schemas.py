"""schemas/ is generated from the models and must not drift from them."""

from __future__ import annotations

import json
from pathlib import Path

from tsfleet import schemas
from tsfleet.models import KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models():
    stale = schemas.stale(ROOT / "schemas")
    assert stale == [], f"schemas/ is stale ({', '.join(stale)}): run python -m tsfleet.schemas"


def test_check_mode_names_the_command(tmp_path, capsys):
    assert schemas.main([str(tmp_path), "--check"]) == 1
    assert "python -m tsfleet.schemas" in capsys.readouterr().err
    assert schemas.main([str(tmp_path)]) == 0
    assert schemas.main([str(tmp_path), "--check"]) == 0
    doc = json.loads((tmp_path / "readings.json").read_text())
    assert doc["x-tsfleet"]["key"] == ["device_id", "observed_at", "metric"]
    assert len(list(tmp_path.glob("*.json"))) == len(KINDS)
