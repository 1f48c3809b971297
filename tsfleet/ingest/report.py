"""What an ingest call did: rows in, accepted, duplicate and quarantined."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestReport:
    """Counts of one ingest call, over all of its chunks.

    ``n_rows == n_accepted + n_duplicates + n_quarantined`` always holds.
    """

    kind: str
    source: str
    n_rows: int = 0
    n_accepted: int = 0
    n_duplicates: int = 0
    n_quarantined: int = 0
    quarantined_by_reason: Counter = field(default_factory=Counter)
    batch_ids: list[int] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.n_rows += other.n_rows
        self.n_accepted += other.n_accepted
        self.n_duplicates += other.n_duplicates
        self.n_quarantined += other.n_quarantined
        self.quarantined_by_reason.update(other.quarantined_by_reason)
        self.batch_ids.extend(other.batch_ids)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "source": self.source, "n_rows": self.n_rows,
            "n_accepted": self.n_accepted, "n_duplicates": self.n_duplicates,
            "n_quarantined": self.n_quarantined,
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "batch_ids": list(self.batch_ids),
        }

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.quarantined_by_reason.items()))
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"
        text = (f"{self.kind} from {self.source}: {n(self.n_rows, 'row')}, {self.n_accepted} "
                f"accepted, {n(self.n_duplicates, 'duplicate')}, {self.n_quarantined} quarantined")
        return text + (f" ({reasons})" if reasons else "")
