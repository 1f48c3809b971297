"""Writer.call runs a function on the writer thread between two batches (the base of
issue 23's control interface: writes queued into the single writer)."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.errors import TsfleetError
from tsfleet.live.writer import Writer


def test_call_runs_on_the_writer_thread_and_hands_back_result_and_error():
    fleet = Fleet(memory=True)
    writer = Writer(fleet)
    writer.start()
    try:
        assert writer.call(lambda: writer.on_thread) is True
        assert not writer.on_thread
        with pytest.raises(ZeroDivisionError):
            writer.call(lambda: 1 / 0)
        n = writer.call(lambda: fleet.ingest("readings", [
            {"device_id": "d-1", "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
             "value": 80}]).n_accepted)
        assert n == 1
    finally:
        writer.stop()
    with pytest.raises(TsfleetError, match="writer stopped"):
        writer.call(lambda: None)
    fleet.close()
