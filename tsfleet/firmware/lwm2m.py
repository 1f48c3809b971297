"""LwM2M Firmware Update object (5) -> tsfleet update states.

Object 5 reports a State (resource 3: 0 idle, 1 downloading, 2 downloaded,
3 updating) and an Update Result (resource 5). :func:`update_state` maps a
pair onto the ``update_events.state`` values and a failure reason.

>>> update_state(1, 0)
('downloading', None)
>>> update_state(0, 1)
('succeeded', None)
>>> update_state(0, 5)
('failed', 'integrity check failure')
"""

from __future__ import annotations

from tsfleet.errors import InvalidParameter

#: Resource 3, State.
STATES = {0: "idle", 1: "downloading", 2: "downloaded", 3: "updating"}
#: Resource 5, Update Result: code -> reason (0 initial and 1 success are not failures).
RESULTS = {
    0: "initial", 1: "success", 2: "not enough flash", 3: "out of RAM",
    4: "connection lost", 5: "integrity check failure", 6: "unsupported package type",
    7: "invalid URI", 8: "update failed", 9: "unsupported protocol", 10: "cancelled",
    11: "deferred",
}


def update_state(state: int, result: int) -> tuple[str, str | None]:
    """``(state, reason)`` for ``update_events`` from object 5's State and Update Result.

    Idle with result 0 (initial) or 11 (deferred) is ``scheduled``: the update is
    not running; idle with 1 is ``succeeded``; any other result is ``failed`` with
    the result's name as reason. A non-idle state is that state.
    """
    if state not in STATES:
        raise InvalidParameter(f"LwM2M firmware state must be one of {sorted(STATES)}, "
                               f"got {state!r}")
    if result not in RESULTS:
        raise InvalidParameter(f"LwM2M update result must be one of {sorted(RESULTS)}, "
                               f"got {result!r}")
    if state != 0:
        return STATES[state], None
    if result in (0, 11):
        return "scheduled", (RESULTS[result] if result == 11 else None)
    if result == 1:
        return "succeeded", None
    return "failed", RESULTS[result]
