"""JSON Schemas of every ingest payload, generated from the pydantic models.

``python -m tsfleet.schemas`` rewrites ``schemas/*.json``; ``--check`` exits
non-zero and names the stale files when they differ from the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tsfleet.models import KINDS


def render() -> dict[str, str]:
    """File name -> JSON text of each kind's schema."""
    out = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"urn:tsfleet:schema:{kind}"
        schema["x-tsfleet"] = {"kind": kind, "table": model.spec.table,
                               "key": list(model.spec.key), "mode": model.spec.mode}
        out[f"{kind}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def stale(folder: Path) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [name for name, text in render().items()
            if not (folder / name).is_file() or (folder / name).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tsfleet.schemas")
    p.add_argument("folder", nargs="?", default="schemas")
    p.add_argument("--check", action="store_true", help="only report stale files")
    args = p.parse_args(argv)
    folder = Path(args.folder)
    if args.check:
        bad = stale(folder)
        if bad:
            print(f"stale schemas: {', '.join(bad)}; run: python -m tsfleet.schemas",
                  file=sys.stderr)
            return 1
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (folder / name).write_text(text)
    print(f"wrote {len(KINDS)} schemas to {folder}/")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
