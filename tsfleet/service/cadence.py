"""Analysis cadences: which analysis is due, run one at a time.

``tsfleet serve`` calls :meth:`Cadence.tick` on its analysis thread
(:mod:`tsfleet.service.worker`), beside ingest; with ``--analyses-on-writer``, on
the writer thread between two commits, as before issue 23. A tick runs at most
one due analysis through :func:`tsfleet.service.runner.run_one` (or the ``run``
it is given). Each analysis is due ``every`` seconds after its previous attempt
started; a failed attempt is recorded by the runner and is simply due again one
cadence later.

A result reflects the data received up to ``every + duration`` seconds earlier
(plus the time waiting for another analysis). The defaults keep every analysis
within the 5-minute freshness bar with room for runs of a minute or more.

>>> parse_every("power=5m,firmware=1h")["power"]
300.0
>>> parse_duration("90s"), parse_duration("2m"), parse_duration("1.5h")
(90.0, 120.0, 5400.0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tsfleet.errors import InvalidParameter
from tsfleet.service.runner import ANALYSES, RunResult, run_one

log = logging.getLogger("tsfleet.service")

#: Seconds between two runs of each analysis when ``--analyze-every`` does not say.
DEFAULT_EVERY_S: dict[str, float] = {
    "firmware": 60.0, "power": 120.0, "calibration": 120.0, "environment": 120.0,
    "network": 120.0, "alerts": 60.0}

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"1d"`` or plain seconds -> seconds (> 0)."""
    t = text.strip().lower()
    scale = _UNITS.get(t[-1:], None)
    number = t[:-1] if scale is not None else t
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise InvalidParameter(f"a cadence is a duration like 30s, 5m or 1h, got {text!r}") \
            from None
    if not seconds > 0:
        raise InvalidParameter(f"a cadence must be positive, got {text!r}")
    return seconds


def parse_every(spec: str | None, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """The cadence of each analysis from ``"power=5m,firmware=1h"``.

    Unnamed analyses keep :data:`DEFAULT_EVERY_S`; ``all=2m`` sets every one;
    ``name=off`` leaves one out; ``off`` (alone) turns continuous analysis off.
    Only analyses installed in this build are scheduled (``names`` overrides).
    """
    names = ANALYSES if names is None else names
    every = {n: DEFAULT_EVERY_S[n] for n in names}
    if spec is None or not spec.strip():
        return every
    if spec.strip().lower() in ("off", "none", "0"):
        return {}
    for item in spec.split(","):
        name, sep, value = (p.strip() for p in item.partition("="))
        if not sep:
            raise InvalidParameter(f"expected name=duration in --analyze-every, got {item!r}")
        targets = names if name in ("all", "*") else (name,)
        if name not in ("all", "*") and name not in ANALYSES:
            raise InvalidParameter(f"unknown analysis {name!r} in --analyze-every; expected "
                                   f"some of {', '.join(ANALYSES)} or all")
        for n in targets:
            if value.lower() == "off":
                every.pop(n, None)
            elif n in names:
                every[n] = parse_duration(value)
            else:
                raise InvalidParameter(f"analysis {n!r} is not installed in this build; "
                                       f"available: {', '.join(names)}")
    return every


class Cadence:
    """Runs due analyses of ``fleet``, one per :meth:`tick`, in the runner's order."""

    def __init__(self, every: dict[str, float], clock: Callable[[], float] = time.monotonic):
        self.every = dict(every)
        self.clock = clock
        start = clock()
        self.next_at = {n: start for n in self.every}  # everything runs once at start
        self.n_runs = 0
        self.n_failed = 0

    def due(self) -> list[str]:
        """The analyses due now, the longest overdue first (ties in run order)."""
        now = self.clock()
        due = [n for n in ANALYSES if n in self.every and self.next_at[n] <= now]
        return sorted(due, key=self.next_at.__getitem__)  # stable: ties keep run order

    def wait_s(self) -> float:
        """Seconds until the next analysis is due (0 when one is due now)."""
        if not self.every:
            return float("inf")
        return max(min(self.next_at.values()) - self.clock(), 0.0)

    def tick(self, fleet, run: Callable[..., RunResult] | None = None) -> RunResult | None:
        """Run the longest overdue analysis that has work (``run(fleet, name)``, default
        :func:`run_one`); analyses with nothing new are skipped in the same tick.
        Returns the run (None if none ran); never raises."""
        result = None
        for name in self.due():
            self.next_at[name] = self.clock() + self.every[name]
            try:
                result = (run or run_one)(fleet, name)
            except Exception as exc:  # noqa: BLE001 - the runner itself failed: retry later
                log.exception("analysis %s could not run", name)
                result = RunResult(name, "failed", 0.0, None, f"{type(exc).__name__}: {exc}")
            if result.status != "skipped":
                self.n_runs += 1
                self.n_failed += result.status == "failed"
                level = logging.INFO if result.status == "ok" else logging.WARNING
                log.log(level, "analysis %s %s in %.2f s (%s items)%s", name, result.status,
                        result.duration_s, "all" if result.n_items is None else result.n_items,
                        f": {result.error}" if result.error else "")
                return result
        return result
