"""The writer's between-commits task (where serve runs analyses): errors never stop it,
and stopping waits for a running task before the store is closed."""

from __future__ import annotations

import threading
import time

from tsfleet.live.writer import Writer


def test_stop_waits_for_a_running_task_and_task_errors_are_not_fatal(fleet):
    entered, calls = threading.Event(), []

    def task():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        entered.set()
        time.sleep(1.0)  # a long analysis run
        calls.append("done")

    w = Writer(fleet, between_commits=task, idle_every=0.05)
    w.start()
    assert entered.wait(30)
    assert w.error is None  # the failed first call did not stop the writer
    w.stop(timeout=0.05)  # shorter than the running task
    assert not w._thread.is_alive() and calls[-1] == "done"
    n = len(calls)
    time.sleep(0.2)
    assert len(calls) == n  # no task after stop
