"""Record new migrations in ``sql/migrations.lock.json``; refuse edited ones.

    python scripts/migrations_lock.py

Adds the sha256 of every file of ``sql/tables`` that the lock does not list yet. An
entry already recorded is never changed: if a recorded file's text differs, the
script names it and exits 1 (add a new migration instead of editing an applied one).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "sql" / "migrations.lock.json"


def main() -> int:
    lock = json.loads(LOCK.read_text(encoding="utf-8"))
    recorded = lock["migrations"]
    edited, added = [], []
    for path in sorted((ROOT / "sql" / "tables").glob("*.sql")):
        digest = hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()
        entry = recorded.get(path.name)
        if entry is None:
            recorded[path.name] = {"sha256": digest}
            added.append(path.name)
        elif entry["sha256"] != digest:
            edited.append(path.name)
    if edited:
        print(f"edited after release (add a new migration instead): {', '.join(edited)}")
        return 1
    lock["migrations"] = dict(sorted(recorded.items()))
    LOCK.write_text(json.dumps(lock, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {len(added)} new migration(s): {', '.join(added) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
